"""Multiple choice end to end on a tiny model: jsonl and SWAG csv in, fine-tune, distil,
prune, INT8, ONNX / ORT / TorchScript export, bench, bundle and the runtime; bad rows
refused with one line."""

from __future__ import annotations

import json
import numpy as np
import pytest

from edgebert.kinds import kind
from helpers import FAST, choice_rows, finetune, run_cli, write_csv, write_jsonl
from test_bad_input import refused


@pytest.fixture(scope="module")
def tok(tiny_bert):
    from edgebert.modeling import load_tokenizer

    return load_tokenizer(tiny_bert)


def swag_rows(rows: list[dict]) -> list[dict]:
    """The same examples in SWAG's columns: the ending's first word moved into sent2."""
    out = []
    for r in rows:
        firsts = {e.split()[0] for e in r["choices"]}
        start = r["choices"][0].split()[0] if len(firsts) == 1 else ""
        out.append({"sent1": r["context"], "sent2": start,
                    **{f"ending{i}": e[len(start):].strip() for i, e in enumerate(r["choices"])},
                    "label": r["label"]})
    return out


@pytest.fixture(scope="module")
def mc_teacher(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("mc")
    data = write_jsonl(root / "mc.jsonl", choice_rows(160))
    m = finetune(tiny_bert, data, root / "teacher", "--kind", "multiple_choice", "--epochs", "6")
    return root / "teacher", m


def test_finetune_learns_and_records_the_kind(mc_teacher):
    teacher, m = mc_teacher
    assert m["metric"] == "accuracy" and m["dev"]["accuracy"] >= 0.75, m["dev"]  # chance 0.25
    stage = json.loads((teacher / "stage.json").read_text())
    assert stage["task"]["kind"] == "multiple_choice"
    config = json.loads((teacher / "config.json").read_text())
    assert config["architectures"] == ["BertForMultipleChoice"]


def test_swag_csv_reads_like_the_jsonl(tiny_bert, tmp_path):
    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task

    rows = choice_rows(40)
    csv = write_csv(tmp_path / "swag.csv", swag_rows(rows))
    jsonl = write_jsonl(tmp_path / "mc.jsonl", rows)
    a = load_task(TaskConfig(str(csv), "multiple_choice"))
    b = load_task(TaskConfig(str(jsonl), "multiple_choice"))
    assert a.splits == b.splits and len(a.splits["train"][0].choices) == 4
    renamed = write_csv(tmp_path / "renamed.csv", [
        {"q": r["context"], **{f"opt{i}": c for i, c in enumerate(r["choices"])},
         "answer": r["label"]} for r in rows])
    c = load_task(TaskConfig(str(renamed), "multiple_choice",
                             {"context": "q", "choices": "opt", "label": "answer"}))
    assert c.splits == b.splits


def test_distil_prune_int8_export_bench_and_serve(mc_teacher, tmp_path):
    teacher, m = mc_teacher
    student = tmp_path / "student"
    code, out = run_cli("distill", "--teacher", teacher, "--layers", "0", "--epochs", "3",
                        "--out", student, *FAST)
    assert code == 0, out
    sm = json.loads((student / "metrics.json").read_text())
    assert sm["dev"]["accuracy"] >= 0.5, sm["dev"]
    pruned = tmp_path / "pruned"
    code, out = run_cli("prune", "--model", student, "--heads", "1", "--epochs", "1",
                        "--out", pruned, *FAST)
    assert code == 0, out
    int8 = tmp_path / "int8"
    code, out = run_cli("quantize", "--model", student, "--out", int8, "--max-drop", "5")
    assert code == 0, out
    qm = json.loads((int8 / "metrics.json").read_text())
    assert (int8 / "model.onnx").exists() and qm["parity_vs_fp32"]["n"] > 0
    assert qm["fused_nodes"]["Attention"] == 1  # the 1-layer student, fused on [B, C, L] input
    for fmt, file in (("onnx", "model.onnx"), ("ort", "model.ort"),
                      ("torchscript", "model.pt")):
        code, out = run_cli("export", "--model", student, "--format", fmt,
                            "--out", tmp_path / fmt)
        assert code == 0, out
        em = json.loads((tmp_path / fmt / "metrics.json").read_text())
        assert em["parity"]["top1_agreement"] == 1.0 and em["parity"]["max_abs_diff"] < 1e-3
        assert (tmp_path / fmt / file).exists()
    import onnx

    graph = onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "choices", "sequence"]
    code, out = run_cli("bench", student, tmp_path / "torchscript", int8, "--runs", "2",
                        "--warmup", "1", "--rounds", "1", "--seq", "16",
                        "--out", tmp_path / "bench.json")
    assert code == 0, out  # each artifact fed [batch, 4 choices, 16 tokens]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert len(bench["results"]) == 3, bench
    code, out = run_cli("bundle", "--model", int8, "--out", tmp_path / "bundle")
    assert code == 0, out
    assert "runtime check: dev accuracy" in out

    from edgebert.runtime import load

    model = load(tmp_path / "bundle")
    res = model.predict("it was the film", choices=["a film bad", "the plot superb", "it dull"])
    assert res[0]["choice"] == 1 and res[0]["text"] == "the plot superb"
    assert np.isclose(sum(res[0]["scores"]), 1.0) and len(res[0]["scores"]) == 3
    two = model.predict(["a", "b"], choices=[["good", "bad"], ["awful", "poor", "lovely"]])
    assert [r["choice"] for r in two] == [0, 2]

def test_prune_learned_cuts_a_multiple_choice_teacher(mc_teacher, tmp_path):
    """Learned masks on [batch, choices, tokens] inputs: the cut model is smaller and scored
    as its kind scores (the chain prunes small tasks' teachers so, wordnet-mc among them)."""
    teacher, tm = mc_teacher
    out = tmp_path / "learned"
    code, output = run_cli("prune-learned", "--model", teacher, "--teacher", teacher,
                           "--sparsity", "0.5", "--recover-epochs", "1", "--out", out, *FAST)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["metric"] == "accuracy" and m["params"] < m["parent"]["params"]
    assert m["learned"]["reached_sparsity"] > 0.2 and m["dev"]["examples"] == tm["dev"]["examples"]


@pytest.mark.parametrize("row,says", [
    ({"context": "x", "choices": ["good", "bad", "dull"], "label": 0}, "3 choices"),
    ({"context": "x", "choices": ["good", "bad", "dull", "poor"], "label": 4}, "outside"),
    ({"context": "x", "choices": ["good", "", "dull", "poor"], "label": 0}, "choice 1 is empty"),
    ({"context": "x", "choices": "good", "label": 0}, "not a list of choices"),
    ({"context": "", "choices": ["good", "bad", "dull", "poor"], "label": 0}, "empty 'context'"),
])
def test_bad_rows_are_one_line_naming_file_and_row(tiny_bert, tmp_path, row, says):
    rows = choice_rows(30)
    rows[17] = row
    data = write_jsonl(tmp_path / "mc.jsonl", rows)
    line = refused(tmp_path / "t", "finetune", "--model", tiny_bert, "--task", data,
                   "--kind", "multiple_choice", "--out", tmp_path / "t", says=says)
    assert "mc.jsonl: line 18" in line


def test_the_one_file_export_refuses_multiple_choice(mc_teacher, tmp_path):
    teacher, _ = mc_teacher
    refused(tmp_path / "t", "export", "--model", teacher, "--format", "onnx", "--with-tokenizer",
            "--out", tmp_path / "t", says="not multiple_choice")


def test_a_long_context_is_cut_never_an_ending(mc_teacher, tmp_path):
    from edgebert.artifacts_io import open_artifact

    opened = open_artifact(mc_teacher[0], max_length=9)  # 5 context + 3 ending words + 3
    enc = opened.encode("dev")
    assert enc.truncated == len(opened.task.splits["dev"])
    for feat, ex in zip(enc.features, opened.task.splits["dev"]):
        for row, choice in zip(feat["input_ids"], ex.choices):
            sep = row.index(opened.tokenizer.sep_token_id)
            assert opened.tokenizer.decode(row[sep + 1:-1]) == choice
def test_multiple_choice_encodes_one_row_per_choice_and_cuts_only_the_context(tok):
    mc = kind("multiple_choice")
    examples = [mc_example("the film was very good and the plot", ["good", "bad"], 0)]
    enc = mc.encode(examples, tok, 8, 64)
    ids = enc.features[0]["input_ids"]
    assert len(ids) == 2 and all(len(row) == 8 for row in ids) and enc.truncated == 1
    for row, ending in zip(ids, ["good", "bad"]):  # each row ends with its whole choice
        assert tok.decode(row[row.index(tok.sep_token_id) + 1:-1]) == ending
    cut = mc.encode([mc_example("a", ["good " * 10, "bad"], 1)], tok, 8, 64)  # alone too long
    assert [len(r) for r in cut.features[0]["input_ids"]] == [8, 5] and cut.truncated == 1
    res = mc.score([], examples, enc, [np.array([1.0, 0.0])])
    assert res["accuracy"] == 1.0


def mc_example(context, choices, label):
    from edgebert.kinds.choice import ChoiceExample

    return ChoiceExample(context, choices, label)


def test_multiple_choice_runtime_arguments_and_result():
    mc = kind("multiple_choice")
    items = mc.serve_items("the film", choices=["good", "bad"])
    assert items == [(("the film", ["good", "bad"]), [("the film", "good"), ("the film", "bad")])]
    res = mc.serve_result(np.array([0.0, 2.0]), [], items[0][0], [])
    assert res["choice"] == 1 and res["text"] == "bad" and len(res["scores"]) == 2
    for bad in ({"choices": None}, {"pairs": ["x"], "choices": [["a", "b"]]},
                {"choices": [["a"]]}):
        with pytest.raises(ValueError):
            mc.serve_items(["ctx"], **bad)
    with pytest.raises(TypeError):
        mc.serve_items(["ctx"], choices=[["a", None]])
