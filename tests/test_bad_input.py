"""Bad input to every stage: one line naming the file or option, exit 2, no traceback, and
no artifact (finished or partial) left behind. Fine-tuning's own cases are in
test_finetune.py; these cover the stages after it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import run_cli


def refused(out: Path | None, *args, says: str = "") -> str:
    code, output = run_cli(*args)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2, output
    assert lines and lines[-1].startswith("error: "), output
    assert "Traceback" not in output
    assert says.lower() in lines[-1].lower(), output
    if out is not None:
        assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    return lines[-1]


def copy_with(src: Path, dst: Path, **files: bytes | str) -> Path:
    shutil.copytree(src, dst)
    for name, data in files.items():
        name = name.replace("__", ".")
        (dst / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return dst


# ------------------------------------------------------------------ model files

def metadata_only(src: Path, dst: Path) -> Path:
    """An artifact's records and tokenizer files without its weights (which files a
    tokenizer saves differs between transformers 4 and 5)."""
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, dst / f.name)
    return dst


def test_truncated_safetensors_is_refused(tiny_teacher, tmp_path):
    weights = (tiny_teacher / "model.safetensors").read_bytes()
    bad = copy_with(tiny_teacher, tmp_path / "m", model__safetensors=weights[:len(weights) // 2])
    out = tmp_path / "out"
    refused(out, "export", "--model", bad, "--format", "onnx", "--out", out,
            says="model.safetensors")


def test_garbage_safetensors_is_refused(tiny_teacher, tmp_path):
    bad = copy_with(tiny_teacher, tmp_path / "m", model__safetensors=b"\x00" * 100)
    out = tmp_path / "out"
    refused(out, "distill", "--teacher", bad, "--layers", "0", "--max-steps", "1", "--out", out,
            says="model.safetensors")


def test_config_shapes_that_do_not_match_the_weights(tiny_teacher, tmp_path):
    cfg = json.loads((tiny_teacher / "config.json").read_text())
    cfg["hidden_size"] = 48
    bad = copy_with(tiny_teacher, tmp_path / "m", config__json=json.dumps(cfg))
    out = tmp_path / "out"
    refused(out, "export", "--model", bad, "--format", "onnx", "--out", out, says="config")


def test_config_that_is_not_json(tiny_teacher, tmp_path):
    bad = copy_with(tiny_teacher, tmp_path / "m", config__json="{not json")
    out = tmp_path / "out"
    refused(out, "quantize", "--model", bad, "--target", "x86-avx2", "--out", out,
            says="config.json")


def test_config_vocabulary_that_does_not_match_the_weights(tiny_teacher, tmp_path):
    cfg = json.loads((tiny_teacher / "config.json").read_text())
    cfg["vocab_size"] = 40
    src = copy_with(tiny_teacher, tmp_path / "m", config__json=json.dumps(cfg))
    out = tmp_path / "out"
    refused(out, "prune", "--model", src, "--heads", "1", "--recover", "none", "--out", out,
            says="config.json")


def test_tokenizer_that_does_not_fit_the_model(tiny_teacher, tmp_path):
    vocab = (tiny_teacher / "vocab.txt").read_text().splitlines()
    vocab += [f"extra{i}" for i in range(200)]  # ids beyond the embedding's rows
    src = copy_with(tiny_teacher, tmp_path / "m", vocab__txt="\n".join(vocab) + "\n")
    (src / "tokenizer.json").unlink()  # rebuilt from vocab.txt
    out = tmp_path / "out"
    refused(out, "distill", "--teacher", src, "--layers", "0", "--out", out, says="tokenizer has")


def weights_only(path: Path, family: str) -> Path:
    """A model saved with `save_pretrained` alone, as a teacher often is: config and
    weights, no tokenizer files."""
    import transformers

    configs = {"bert": transformers.BertConfig(vocab_size=100, hidden_size=32,
                                               num_hidden_layers=1, num_attention_heads=2,
                                               intermediate_size=64),
               "gpt2": transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2)}
    transformers.AutoModel.from_config(configs[family]).save_pretrained(path)
    return path


@pytest.mark.parametrize("stage", ["finetune", "finetune-gpt2", "pretrain-init", "distill",
                                   "evaluate"])
def test_a_model_without_tokenizer_files(stage, tiny_teacher, sentiment_csv, tmp_path):
    out = tmp_path / "out"
    if stage in ("distill", "evaluate"):  # a finished teacher whose tokenizer was lost
        model = metadata_only(tiny_teacher, tmp_path / "m")
        shutil.copy(tiny_teacher / "model.safetensors", model)
        for f in model.iterdir():
            if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
                f.unlink()
    else:
        model = weights_only(tmp_path / "m", "gpt2" if stage.endswith("gpt2") else "bert")
    args = {"finetune": ["finetune", "--model", model, "--task", sentiment_csv, "--kind",
                         "classification", "--out", out],
            "pretrain-init": ["pretrain", "--corpus", sentiment_csv, "--init", model,
                              "--out", out],
            "distill": ["distill", "--teacher", model, "--layers", "0", "--out", out],
            "evaluate": ["evaluate", model]}[stage.removesuffix("-gpt2")]
    before = sorted(tmp_path.rglob("*"))
    code, output = run_cli(*args)
    assert code == 2, output
    assert output.startswith(f"error: {model}: no tokenizer files"), output
    assert output.count("\n") == 1 and "Traceback" not in output, output  # that line alone
    assert ("--tokenizer DIR" if stage == "pretrain-init" else "save_pretrained") in output
    assert sorted(tmp_path.rglob("*")) == before  # nothing written: no --out, no .partial


def test_corrupt_onnx_is_refused(tiny_teacher, tmp_path):
    d = metadata_only(tiny_teacher, tmp_path / "onnx")
    (d / "model.onnx").write_bytes(b"not an onnx file")
    out = tmp_path / "out"
    refused(out, "quantize", "--model", d, "--target", "x86-avx2", "--out", out,
            says="model.onnx")
    code, output = run_cli("evaluate", d)
    assert code == 2 and "model.onnx" in output and "Traceback" not in output


def test_missing_stage_json_says_what_to_pass(tiny_teacher, tmp_path):
    bad = tmp_path / "m"
    shutil.copytree(tiny_teacher, bad)
    (bad / "stage.json").unlink()
    out = tmp_path / "out"
    refused(out, "quantize", "--model", bad, "--target", "arm64", "--out", out,
            says="stage.json")


def test_distilling_from_a_directory_that_is_no_model(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    refused(out, "distill", "--teacher", tmp_path / "empty", "--out", out)


# ------------------------------------------------------------------ options

# (command, options after the model, what the error line must say)
BAD_OPTIONS = [
    ("quantize", ["--target", "x86"], "--target"),
    ("quantize", ["--mode", "fast"], "--mode"),
    ("quantize", ["--calibration", "mean"], "--calibration"),
    ("quantize", ["--max-drop", "-1"], "--max-drop"),
    ("export", ["--format", "tflite"], "--format"),
    ("export", ["--opset", "5"], "--opset"),
    ("export", ["--min-agreement", "2"], "--min-agreement"),
    ("prune", ["--sparsity", "1.5"], "--sparsity"),
    ("prune", ["--heads", "0"], "nothing to prune"),
    ("prune", ["--heads", "1", "--recover", "distill"], "--teacher"),
    ("prune", ["--heads", "1", "--scope", "model"], "--scope"),
    ("prune", ["--drop-layers", "9"], "layer"),
    ("prune", ["--heads", "99"], "head"),
    ("prune", ["--heads", "1.5"], "whole count"),  # neither a fraction nor a count
    ("prune", ["--ffn", "2.5"], "--ffn"),
    ("distill", ["--layers", "0,0"], "--layers"),
    ("distill", ["--layers", "7"], "layer"),
    ("distill", ["--layers", "a,b"], "--layers"),
    ("distill", ["--temperature", "0"], "--temperature"),
    ("distill", ["--kl", "0", "--ce", "0"], "at least one weight"),
]


@pytest.mark.parametrize("command,args,says", BAD_OPTIONS)
def test_bad_stage_options(tiny_teacher, tmp_path, command, args, says):
    out = tmp_path / "out"
    model = "--teacher" if command == "distill" else "--model"
    refused(out, command, model, tiny_teacher, *args, "--out", out, says=says)


def test_output_that_is_the_input(tiny_teacher):
    refused(None, "export", "--model", tiny_teacher, "--format", "onnx", "--out", tiny_teacher,
            says="--out")


def test_read_only_output_directory(tiny_teacher, tmp_path):
    """A read-only directory for a user; a read-only mount for root (who ignores modes)."""
    import os
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                          capture_output=True).returncode != 0:
            pytest.skip("root ignores directory modes and cannot mount a read-only tmpfs here")
        undo = ["umount", str(ro)]
    else:
        ro.chmod(0o500)
        undo = ["chmod", "700", str(ro)]
    try:
        refused(ro / "out", "export", "--model", tiny_teacher, "--format", "onnx", "--out",
                ro / "out", says="--out")
    finally:
        subprocess.run(undo, check=False)


# ------------------------------------------------------------------ bench, check, report

def test_bench_of_something_that_is_no_artifact(tmp_path):
    (tmp_path / "x").mkdir()
    refused(None, "bench", tmp_path / "x", says="not an artifact")
    refused(None, "bench", tmp_path / "nope", says="no such artifact")
    refused(None, "bench", tmp_path / "x", "--batch", "0", says="--batch")


@pytest.mark.parametrize("content", ["", "{", '{"schema": "other"}', '{"schema": '
                                     '"edgebert.bench/1", "results": [{"artifact": "a"}]}'])
def test_check_with_bad_bench_files(tmp_path, content):
    bad = tmp_path / "b.json"
    bad.write_text(content)
    refused(None, "check", "--baseline", bad, "--candidate", bad, says=str(bad))


def test_check_with_a_bad_threshold(tmp_path):
    refused(None, "check", "--baseline", tmp_path / "a.json", "--candidate", tmp_path / "b.json",
            "--max-slowdown", "lots", says="--max-slowdown")


def test_report_of_an_empty_directory(tmp_path):
    refused(None, "report", tmp_path, says="no artifacts")


# ------------------------------------------------------------------ recipes, bundles, corpora

@pytest.mark.parametrize("recipe,says", [
    ("teacher:\n  trian: {}\n", "teacher.trian"),
    ("students: 3\n", "students must be a list"),
    ("quantize:\n  - {target: x86}\n", "quantize.0.target"),
    ("teacher: [\n", "not valid YAML"),
    ("prune:\n  - {model: ghost, heads: 1}\n", "prune.0.model"),
    ("quantize:\n  - {target: arm64, mode: fast}\n", "quantize.0.mode must be one of dynamic"),
    ("teacher:\n  train: {precision: fp8}\n", "precision must be one of auto"),
])
def test_bad_recipes(tmp_path, recipe, says):
    path = tmp_path / "r.yaml"
    path.write_text(recipe)
    refused(tmp_path / "run", "compress", path, "--out", tmp_path / "run", says=says)


def test_unknown_recipe_and_bad_set(tmp_path):
    refused(None, "compress", "nope", says="not a packaged recipe")
    refused(None, "compress", "--set", "teacher", "--show", says="KEY=VALUE")
    refused(None, "compress", "--set", "teacher.train.epochs=-1", "--show", says="--epochs")


def test_bundle_of_a_torchscript_only_artifact(tiny_teacher, tmp_path):
    d = metadata_only(tiny_teacher, tmp_path / "ts")
    (d / "model.pt").write_bytes(b"x")
    out = tmp_path / "b"
    refused(out, "bundle", "--model", d, "--out", out, says="TorchScript")


def test_pretrain_on_a_corpus_that_is_missing_or_not_utf8(tmp_path, tiny_bert):
    refused(tmp_path / "p", "pretrain", "--corpus", tmp_path / "none", "--tokenizer", tiny_bert,
            "--out", tmp_path / "p", says="--corpus")
    bad = tmp_path / "c.txt"
    bad.write_bytes("caf\xe9 au lait\n\nmore\n".encode("latin-1"))
    refused(tmp_path / "p", "pretrain", "--corpus", bad, "--tokenizer", tiny_bert,
            "--cache", tmp_path / "cache", "--out", tmp_path / "p", says="UTF-8")
    one = tmp_path / "one.txt"
    one.write_text("only one document here.\n")
    refused(tmp_path / "p", "pretrain", "--corpus", one, "--tokenizer", tiny_bert,
            "--cache", tmp_path / "cache", "--out", tmp_path / "p", says="2 documents")


def test_pretrain_without_a_tokenizer(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c.\n\nd e f.\n")
    refused(tmp_path / "p", "pretrain", "--corpus", corpus, "--out", tmp_path / "p",
            says="--tokenizer")


def test_tokenizer_train_with_a_tiny_vocabulary(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c.\n")
    refused(None, "tokenizer", "train", "--corpus", corpus, "--vocab-size", "10", "--out",
            tmp_path / "t", says="--vocab-size")


def test_full_disk_is_one_line_and_leaves_nothing(tiny_teacher, tmp_path):
    import subprocess

    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root) to simulate a full disk")
    try:
        out = disk / "out"
        refused(out, "export", "--model", tiny_teacher, "--format", "onnx", "--out", out,
                says="No space left")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)
