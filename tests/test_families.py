"""Every supported encoder family through the whole chain, on tiny models built here:
finetune -> distill (layers 0, 2) -> prune (half the heads and FFN) -> quantize (INT8)
-> export (ONNX, ORT, TorchScript) -> bundle -> the torch-free runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import onnx
import pytest

from helpers import (FAMILY_CONFIGS, build_tiny, build_tiny_roberta_bpe, run_cli,
                     sentiment_rows, write_csv)

QUICK = ["--batch-size", "16", "--lr", "3e-3", "--warmup", "0", "--threads", "1"]


def ok(*args) -> str:
    code, output = run_cli(*args)
    assert code == 0, output
    return output


@pytest.mark.parametrize("family", [f for f in FAMILY_CONFIGS if f not in ("bert", "roberta")])
def test_family_runs_the_whole_chain(family, tmp_path):
    base = build_tiny(tmp_path / "base", family)
    task = write_csv(tmp_path / "task.csv", sentiment_rows(64))
    teacher, student, pruned = tmp_path / "teacher", tmp_path / "student", tmp_path / "pruned"
    ok("finetune", "--model", base, "--task", task, "--kind", "classification", "--epochs",
       "2", *QUICK, "--out", teacher)
    ok("distill", "--teacher", teacher, "--layers", "0,2", "--epochs", "1", *QUICK,
       "--out", student)
    shapes = json.loads((student / "config.json").read_text())
    assert shapes.get("num_hidden_layers", shapes.get("n_layers")) == 2
    ok("prune", "--model", student, "--heads", "0.5", "--ffn", "0.5", "--recover", "none",
       "--out", pruned)
    m = json.loads((pruned / "metrics.json").read_text())
    assert m["shapes"]["heads_per_layer"] == ([1] if family == "albert" else [1, 1])
    assert m["params"] < m["parent"]["params"]
    int8 = tmp_path / "int8"
    ok("quantize", "--model", pruned, "--target", "x86-vnni", "--max-drop", "50",
       "--out", int8)
    q = json.loads((int8 / "metrics.json").read_text())
    assert q["size_mb"] < q["fp32_onnx_mb"] and q["parity_vs_fp32"]["top1_agreement"] >= 0.8
    graph = onnx.load(str(int8 / "model.onnx")).graph
    inputs = [i.name for i in graph.input]
    takes_types = family not in ("distilbert", "roberta")  # no token types / one type
    assert ("token_type_ids" in inputs) == takes_types, inputs
    for fmt in ("onnx", "ort", "torchscript"):
        out = tmp_path / fmt
        ok("export", "--model", pruned if fmt != "ort" else tmp_path / "onnx", "--format", fmt,
           "--out", out)
        res = json.loads(ok("evaluate", out, "--json"))
        assert 0 <= res["accuracy"] <= 1
    ok("bundle", "--model", int8, "--out", tmp_path / "bundle")
    from edgebert.runtime import load

    runtime = load(tmp_path / "bundle")
    assert runtime.predict("a good lovely film")[0]["label"] in ("neg", "pos")


def test_compress_on_a_roberta_with_a_bpe_tokenizer(tmp_path):
    """RoBERTa's own tokenizer kind through `compress`: the stages run; vocabulary
    trimming and the export with the tokenizer inside (WordPiece only) are skipped with a
    line saying so; the INT8 artifact bundles and runs in the runtime."""
    base = build_tiny_roberta_bpe(tmp_path / "base")
    task = write_csv(tmp_path / "task.csv", sentiment_rows(96))
    run = tmp_path / "run"
    sets = [f"teacher.model={base}", f"task.name={task}", "task.kind=classification",
            "task.limit=null", "teacher.train={max_steps: 6, batch_size: 16, lr: 3.0e-3}",
            "students=[{name: student, layers: [0, 2], train: {max_steps: 4, batch_size: 16}}]",
            "quantize=[{target: native, max_drop: 100}]", "bench.enabled=false",
            "export=[{format: onnx, with_tokenizer: true}, {format: onnx}, {format: ort}, "
            "{format: torchscript}]"]
    cmd = [sys.executable, "-m", "edgebert.cli", "compress", "tiny", "--out", str(run)]
    for s in sets:
        cmd += ["--set", s]
    res = subprocess.run(cmd, env=os.environ | {"EDGEBERT_QUIET": "1"}, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-2000:]
    assert "a BPE tokenizer; vocabulary trimming and the exports with the tokenizer" in res.stdout
    assert not list(run.glob("*_trimmed")) and not (run / "export" / "onnx-text").exists()
    for fmt in ("onnx", "ort", "torchscript"):
        assert (run / "export" / fmt / "metrics.json").exists(), fmt
    assert (run / "report.json").exists()
    (int8,) = (run / "int8").iterdir()
    assert "token_type_ids" not in [i.name for i in onnx.load(str(int8 / "model.onnx")).graph.input]
    code, output = run_cli("trim-vocab", "--model", run / "student", "--out", tmp_path / "t")
    assert code == 2 and "a BPE tokenizer; trimming keeps WordPiece" in output, output
    code, output = run_cli("export", "--model", int8, "--format", "onnx", "--with-tokenizer",
                           "--out", tmp_path / "text")
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2 and "a BPE tokenizer; only WordPiece" in lines[-1], output
    ok("bundle", "--model", int8, "--out", tmp_path / "bundle")
    from edgebert.runtime import load

    assert load(tmp_path / "bundle").predict(["a good film", "an awful plot"])[1]["label"] in (
        "neg", "pos")


def test_an_unsupported_family_is_one_line(tmp_path):
    import transformers

    from helpers import build_tiny_bert

    path = build_tiny_bert(tmp_path / "gpt")
    for f in path.glob("*.safetensors"):
        f.unlink()
    config = transformers.GPT2Config(vocab_size=200, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2Model(config).save_pretrained(path, safe_serialization=True)
    task = write_csv(tmp_path / "task.csv", sentiment_rows(20))
    code, output = run_cli("finetune", "--model", path, "--task", task, "--kind",
                           "classification", "--out", tmp_path / "t")
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, output
    assert "model type 'gpt2' is not supported" in lines[0] and "distilbert" in lines[0]
    assert not (tmp_path / "t").exists()
