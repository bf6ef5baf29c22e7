"""ExecuTorch as a format: FP32 and INT8 .pte programs (XNNPACK) exported, evaluated, timed,
bundled and served on a tiny model; a missing executorch is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import refused_without, run_cli

QUIET = {"log": lambda *_: None}


def _need_executorch() -> None:
    pytest.importorskip("executorch", reason="ExecuTorch is an optional extra: pip install "
                                             "'edgebert[executorch]'")


def _export(teacher: Path, out: Path, precision: str) -> Path:
    _need_executorch()
    from edgebert.stages.export.config import ExportConfig
    from edgebert.stages.export.stage import run as export

    return export(ExportConfig(model=str(teacher), out=str(out), format="executorch",
                               precision=precision, max_drop=5.0), **QUIET)


@pytest.fixture(scope="module")
def pte(tiny_teacher, tmp_path_factory) -> Path:
    return _export(tiny_teacher, tmp_path_factory.mktemp("et") / "fp32", "auto")


@pytest.fixture(scope="module")
def pte_int8(tiny_teacher, tmp_path_factory) -> Path:
    return _export(tiny_teacher, tmp_path_factory.mktemp("et") / "int8", "int8")


@pytest.mark.slow
def test_fp32_program_is_delegated_and_matches_its_parent(pte, tiny_teacher):
    stage = json.loads((pte / "stage.json").read_text())
    metrics = json.loads((pte / "metrics.json").read_text())
    assert (pte / "model.pte").is_file() and not (pte / "model.onnx").exists()
    assert stage["format"] == "executorch" and stage["precision"] == "fp32"
    assert metrics["size_mb"] == pytest.approx((pte / "model.pte").stat().st_size / 1e6)
    # whole dev split, ExecuTorch's own runtime, against the PyTorch parent
    assert metrics["parity"]["max_abs_diff"] < 1e-4
    assert metrics["parity"]["top1_agreement"] == 1.0
    dev = json.loads((tiny_teacher / "metrics.json").read_text())["dev"]
    assert metrics["parity"]["n"] == dev["examples"]
    # XNNPACK takes the linear layers; what stays out is named (embedding lookups at least)
    assert "embedding" in metrics["outside_delegate"]
    assert "linear" not in metrics["outside_delegate"]
    assert "addmm" not in metrics["outside_delegate"]


@pytest.mark.slow
def test_int8_program_is_guarded_smaller_and_checked_against_its_reference(pte_int8, pte):
    stage = json.loads((pte_int8 / "stage.json").read_text())
    metrics = json.loads((pte_int8 / "metrics.json").read_text())
    assert stage["precision"] == metrics["precision"] == "int8"
    # the program as XNNPACK runs it within the budget, as the guard's reference was
    assert -metrics["delta_vs_fp32_dev"] <= 5.0 and -metrics["reference_delta_vs_fp32_dev"] <= 5.0
    assert metrics["lowering_parity"]["max_abs_diff"] < 0.5  # recorded: XNNPACK's rounding
    assert metrics["lowering_parity"]["n"] == metrics["parity"]["n"]
    assert metrics["parity"]["top1_agreement"] >= 0.9  # against the FP32 parent: recorded
    assert metrics["calibration_examples"] > 0
    assert metrics["size_mb"] < json.loads((pte / "metrics.json").read_text())["size_mb"]
    # the word table packed for ExecuTorch's quantized kernels, the fewest bits within budget
    table = metrics["word_table"]
    assert table["bits"] == table["tries"][-1]["bits"] and table["tries"][-1]["kept"]
    assert f"embedding_{table['bits']}bit" in metrics["outside_delegate"] or table["bits"] == 8
    assert all(t["dev_drop"] > 5.0 for t in table["tries"][:-1])


def test_a_packed_word_table_looks_up_what_it_quantized(monkeypatch):
    """2, 4 and 8 bits a value, per group of 128: each lookup is its row within the error
    its bits allow, and clipping each group's range errs less than its min-max range."""
    pytest.importorskip("executorch", reason="ExecuTorch is an optional extra")
    import torch

    from edgebert.stages.export import pte_table

    torch.manual_seed(0)
    weight = torch.randn(50, 256)
    ids = torch.tensor([[0, 7, 49], [3, 3, 1]])

    def error(bits: int) -> float:
        got = pte_table.quantized_table(weight, bits)(ids)
        assert got.shape == (2, 3, 256)
        return float((got - weight[ids]).norm() / weight[ids].norm())

    errors = [error(b) for b in (2, 4, 8)]
    assert errors[0] < 0.45 and errors[1] < 0.12 and errors[2] < 0.01, errors
    monkeypatch.setattr(pte_table, "CLIPS", (1.0,))  # min-max ranges
    assert error(2) > errors[0] and error(4) >= errors[1]


@pytest.mark.slow
def test_the_program_runs_under_arm64_emulation_as_an_app_runs_it(pte_int8):
    """ExecuTorch's C++ runtime, cross-compiled for aarch64, under qemu: the export checks
    its dev examples against x86 (or records why it could not), and `arm-env --check`
    compares the whole dev split."""
    from edgebert.targets.arm64 import pte_unavailable

    arm = json.loads((pte_int8 / "metrics.json").read_text())["arm64_emulation"]
    why = pte_unavailable()
    if why:
        assert arm == {"checked": False, "reason": why}
        pytest.skip(f"arm64 emulation: {why}")
    assert arm["checked"] and arm["examples"] == arm["predictions"] > 0
    assert arm["top1_agreement"] == 1.0 and arm["max_abs_diff"] < 1e-2
    assert arm["arm64_top1_vs_fp32"] == arm["x86_top1_vs_fp32"]
    code, out = run_cli("arm-env", "--check", pte_int8, "--examples", "0")
    assert code == 0, out
    res = json.loads(out[out.index("{"):])
    assert res["executorch"] and res["top1_agreement"] == 1.0 and res["examples"] >= 20


@pytest.mark.slow
def test_evaluate_scores_the_program_as_its_export_did(pte, pte_int8):
    from edgebert.evaluate import evaluate

    for art in (pte, pte_int8):
        got = evaluate(str(art), split="test")
        want = json.loads((art / "metrics.json").read_text())["test"]
        assert got["accuracy"] == pytest.approx(want["accuracy"])


@pytest.mark.slow
def test_bench_labels_the_time_x86_xnnpack(pte_int8, tiny_teacher):
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig

    quick = BenchConfig([1], [16], threads=1, warmup=1, runs=3, rounds=1)
    grid = bench([str(pte_int8), str(tiny_teacher)], quick, log=lambda *_: None)
    by_format = {r["format"]: r for r in grid["results"]}
    assert by_format["executorch"]["n"] == 3 and by_format["executorch"]["p50_ms"] > 0
    assert by_format["executorch"]["timed_as"] == "x86 XNNPACK"  # never a phone latency
    assert "timed_as" not in by_format["pytorch"]


def test_a_longer_input_than_the_program_takes_is_refused_named(pte):
    import numpy as np

    from edgebert.errors import UserError
    from edgebert.formats import open_model

    runner, fmt = open_model(pte, threads=1)
    assert fmt.name == "executorch" and not fmt.torch_free
    assert runner.max_batch == 8 and runner.max_tokens == 128
    ids = np.full((11, 9), 5, np.int64)  # more than max_batch: run in slices
    out = runner({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert out[0].shape == (11, 2)
    long = np.full((1, 129), 5, np.int64)
    with pytest.raises(UserError, match="takes at most 128 tokens"):
        runner({"input_ids": long, "attention_mask": np.ones_like(long)})


@pytest.mark.slow
def test_bundle_and_runtime_serve_the_program(pte_int8, tmp_path):
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle

    out = bundle(BundleConfig(str(pte_int8), str(tmp_path / "b")), **QUIET)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "executorch" and manifest["model"] == "model.pte"
    assert manifest["precision"] == "int8"
    assert set(manifest["files"]) == {"model.pte", "tokenizer.json"}
    code = ("import sys, edgebert.runtime as r; m = r.load(sys.argv[1], threads=1); "
            "p = m.predict(['a fine film', 'dull']); print(len(p), sorted(p[0]['scores']))")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                         check=True)
    assert res.stdout.split()[0] == "2"
    (out / "model.pte").write_bytes(b"altered")
    from edgebert.runtime import BundleError, load

    with pytest.raises(BundleError, match="model.pte: sha256 differs"):
        load(out)


def test_missing_executorch_is_one_line_exit_2_and_nothing_written(tiny_teacher, tmp_path):
    """A Python where `import executorch` fails: the export refuses before writing."""
    refused_without("executorch", "pip install 'edgebert[executorch]'", tiny_teacher, tmp_path,
                    "--format", "executorch", "--precision", "int8")


def test_int8_and_fp32_are_executorchs_precisions_only(tiny_teacher, tmp_path):
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "executorch",
                           "--precision", "bf16", "--out", tmp_path / "x")
    assert code == 2 and "--precision: is for --format openvino (fp32, bf16) or executorch " \
                          "(fp32, int8), not bf16 with --format executorch" in output
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "onnx",
                           "--precision", "int8", "--out", tmp_path / "y")
    assert code == 2 and "not int8 with --format onnx" in output


def test_a_report_shows_an_executorch_time_as_x86_xnnpack_not_a_phone_latency(tmp_path):
    from edgebert.report.collect import _latency

    art = tmp_path / "pte"
    art.mkdir()
    (art / "model.pte").write_bytes(b"")
    result = {"path": str(art), "batch": 1, "seq": 128, "source": "measured",
              "machine": {"machine": "x86_64", "cpu": "AMD EPYC"}, "timed_as": "x86 XNNPACK",
              "p50_ms": 1.0, "p90_ms": 1.1, "p99_ms": 1.2, "throughput_seq_s": 1000.0}
    got = _latency(art, tmp_path, "x86_64", [result])
    assert got["latency_source"] == "x86 XNNPACK, measured on AMD EPYC"
