"""The fine-tuning stage on a 2-layer BERT, through the CLI, for every head."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import FAST, finetune, ner_conll, run_cli, sentiment_rows, squad_json, write_csv


def check_artifact(out: Path, kind: str):
    """The artifact opens with from_pretrained and evaluate reproduces its test metrics."""
    from edgebert.modeling import head_class

    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "stage.json",
            "metrics.json"} <= names
    assert not any(n.startswith("checkpoint") for n in names)
    assert not out.with_name(out.name + ".partial").exists()
    head_class(kind).from_pretrained(out)
    code, output = run_cli("evaluate", out, "--json")
    assert code == 0, output
    again = json.loads(output)
    stored = json.loads((out / "metrics.json").read_text())["test"]
    for key, value in stored.items():
        if key == "outcomes":  # per example: the same predictions of the same examples
            _same(again[key], value)
        else:
            assert again[key] == pytest.approx(value, abs=1e-6), key


def test_classification_learns_and_writes_an_artifact(tiny_bert, sentiment_csv, tmp_path):
    m = finetune(tiny_bert, sentiment_csv, tmp_path / "cls", "--kind", "classification",
                 "--epochs", "6")
    assert m["metric"] == "accuracy"
    assert m["dev"]["accuracy"] >= 0.75 and m["test"]["accuracy"] >= 0.75  # the word decides
    assert set(m["test"]) >= {"accuracy", "precision", "recall", "f1", "mcc"}
    losses = [h["train_loss"] for h in m["train"]["history"]]
    assert losses[-1] < losses[0]
    stage = json.loads((tmp_path / "cls" / "stage.json").read_text())
    assert stage["task"]["labels"] == ["neg", "pos"] and stage["stage"] == "finetune"
    # the fresh head's own lr is finetune's default (the encoder keeps --lr)
    assert stage["config"]["train"]["head_lr"] == 0.02
    check_artifact(tmp_path / "cls", "classification")
    code, output = run_cli("finetune", "--model", tiny_bert, "--task", sentiment_csv,
                           "--kind", "classification", "--out", tmp_path / "cls")
    assert code == 0 and "already finished" in output


def _same(a, b) -> None:
    """Equal structures, numbers within 1e-5 (regression outcomes are stored at 6 digits)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-5, rel=1e-5)
    else:
        assert a == b


def test_pair_regression_ner_qa_heads(tiny_bert, tmp_path):
    rows = sentiment_rows(40)
    pairs = [{"text": r["text"], "text_pair": "the movie", "label": r["label"]} for r in rows]
    m = finetune(tiny_bert, write_csv(tmp_path / "pairs.csv", pairs), tmp_path / "pair",
                 "--kind", "pair", "--max-steps", "10")
    assert "mcc" in m["test"]
    check_artifact(tmp_path / "pair", "pair")

    reg = [{"text": r["text"], "label": float(r["label"] == "pos") + 0.1 * (i % 3)}
           for i, r in enumerate(rows)]
    m = finetune(tiny_bert, write_csv(tmp_path / "reg.csv", reg), tmp_path / "reg",
                 "--kind", "regression", "--max-steps", "10")
    assert {"pearson", "spearman", "mse"} <= set(m["test"])
    check_artifact(tmp_path / "reg", "regression")

    # --min-examples raises NER's epochs up to its own cap, 10 (a sentence classifier's: 3)
    m = finetune(tiny_bert, ner_conll(tmp_path / "ner.txt"), tmp_path / "ner", "--kind", "ner",
                 "--epochs", "1", "--min-examples", "100000")
    assert m["train"]["history"][-1]["epoch"] == pytest.approx(10.0)
    assert m["metric"] == "entity_f1" and m["test"]["entity_f1"] > 0.5
    check_artifact(tmp_path / "ner", "ner")

    m = finetune(tiny_bert, squad_json(tmp_path / "qa.json"), tmp_path / "qa", "--kind", "qa",
                 "--epochs", "8")
    assert {"exact_match", "f1"} <= set(m["test"])
    assert m["test"]["f1"] > 0  # two fixed questions: the span head learns something
    check_artifact(tmp_path / "qa", "qa")


def test_long_texts_are_truncated_and_counted(tiny_bert, tmp_path):
    rows = sentiment_rows(30)
    rows[0]["text"] = "good " * 20_000  # 100,000 characters
    m = finetune(tiny_bert, write_csv(tmp_path / "long.csv", rows), tmp_path / "long",
                 "--kind", "classification", "--max-steps", "2", "--max-length", "32")
    assert m["train"]["truncated"] + m["dev"]["truncated"] + m["test"]["truncated"] == 1
    assert m["train"]["steps"] == 2


@pytest.mark.parametrize("case", ["missing_column", "empty", "unknown_label", "non_utf8",
                                  "bad_model", "bad_option", "vocab_mismatch",
                                  "tokenizer_knows_no_word"])
def test_bad_input_is_one_line_exit_2_and_no_artifact(case, tiny_bert, tmp_path):
    data, model, extra = tmp_path / "d.csv", tiny_bert, []
    rows = sentiment_rows(20)
    if case == "missing_column":
        write_csv(data, [{"review": r["text"], "label": r["label"]} for r in rows])
    elif case == "empty":
        data.write_text("")
    elif case == "unknown_label":
        data = tmp_path / "dir"
        data.mkdir()
        for name in ("train", "dev"):
            write_csv(data / f"{name}.csv", rows)
        write_csv(data / "test.csv", rows + [{"text": "meh", "label": "neutral"}])
    elif case == "non_utf8":
        data.write_bytes(b"text,label\n" + "café,pos\n".encode("latin-1") * 20)
    elif case == "bad_model":
        write_csv(data, rows)
        model = tmp_path / "not-a-model"
        model.mkdir()
    elif case == "bad_option":
        write_csv(data, rows)
        extra = ["--warmup", "2"]
    elif case == "vocab_mismatch":
        write_csv(data, rows)
        model = tmp_path / "small-vocab"
        model.mkdir()
        for f in tiny_bert.iterdir():
            (model / f.name).write_bytes(f.read_bytes())
        cfg = json.loads((model / "config.json").read_text())
        cfg["vocab_size"] = 20
        (model / "config.json").write_text(json.dumps(cfg))
    elif case == "tokenizer_knows_no_word":  # every word [UNK]: it would learn nothing, silently
        from edgebert.modeling import save_tokenizer
        from edgebert.vocab import SPECIAL, wordpiece

        write_csv(data, rows)
        model = tmp_path / "unk-vocab"
        model.mkdir()
        for f in tiny_bert.glob("*.*"):
            if f.name in ("config.json", "model.safetensors"):
                (model / f.name).write_bytes(f.read_bytes())
        save_tokenizer(wordpiece(SPECIAL + ["zzz"]), model)
    out = tmp_path / "out"
    code, output = run_cli("finetune", "--model", model, "--task", data, "--kind",
                           "classification", "--out", out, *extra)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2, output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    assert not out.exists() and not out.with_name("out.partial").exists()


def test_output_inside_input_is_refused(tiny_bert, sentiment_csv):
    code, output = run_cli("finetune", "--model", tiny_bert, "--task", sentiment_csv,
                           "--kind", "classification", "--out", tiny_bert / "sub")
    assert code == 2 and "overlaps the input" in output


def _cli_process(tiny_bert, data, out) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edgebert.cli", "finetune", "--model", str(tiny_bert),
           "--task", str(data), "--kind", "classification", "--out", str(out), *FAST,
           "--max-steps", "60", "--eval-every", "10", "--save-every", "3", "--seed", "7"]
    env = os.environ | {"EDGEBERT_QUIET": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_sigkill_mid_training_resumes_to_identical_results(tiny_bert, tmp_path):
    """Kill -9 after a few checkpoints; the same command finishes with the same weights."""
    data = write_csv(tmp_path / "d.csv", sentiment_rows(400))
    ref = tmp_path / "ref"
    ref_proc = _cli_process(tiny_bert, data, ref)  # one thread each: they run side by side
    out = tmp_path / "killed"
    proc = _cli_process(tiny_bert, data, out)
    state = out.with_name("killed.partial") / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["step"] >= 12:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    killed_at = json.loads(state.read_text())["step"]
    assert 12 <= killed_at < 60
    assert ref_proc.wait() == 0, ref_proc.communicate()[0].decode()[-2000:]

    resumed = _cli_process(tiny_bert, data, out)
    output = resumed.communicate()[0].decode()
    assert resumed.returncode == 0, output
    assert "resuming from" in output
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
    assert a["test"] == b["test"] and a["dev"] == b["dev"]
    assert (ref / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
