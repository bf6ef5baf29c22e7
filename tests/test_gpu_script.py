"""benchmarks/gpu.py on a CPU: its code path on a tiny config, and its FLOP count
against a count by hand. The GPU figures themselves come from a GPU machine."""

from __future__ import annotations

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def gpu():
    return load_benchmark("gpu")


def test_flops_of_a_step_match_a_count_by_hand(gpu):
    import torch

    model = gpu.build("tiny", torch.device("cpu"))
    L, h, i, V = 2, 128, 512, 2000  # edgebert pretrain's "tiny" shape, VOCAB["tiny"]
    per_token = L * (4 * h * h + 2 * h * i) + h * h + h * V  # q k v o, FFN; MLM transform, decoder
    per_sequence = h * h + h * 2  # pooler, NSP classifier
    assert gpu.per_token_params(model) == per_token
    assert gpu.per_sequence_params(model) == per_sequence
    batch, seq = 3, 16
    tokens = batch * seq
    by_hand = 6 * per_token * tokens + 12 * L * h * seq * tokens + 6 * per_sequence * batch
    assert gpu.step_flops(model, batch, seq) == by_hand


def test_the_script_runs_its_path_on_a_tiny_config(gpu, tmp_path, monkeypatch):
    """Its rows go to the store (a temporary one here), one per section, as one run."""
    import store

    monkeypatch.setattr(store, "STORE", tmp_path / "results.jsonl")
    gpu.main(["--tiny", "--steps", "1", "--warmup", "1", "--seq", "32"])
    rows = store.load(tmp_path / "results.jsonl")
    assert [r.case for r in rows] == ["device", "tiny", "ddp_one_process"]
    assert {r.suite for r in rows} == {"gpu"} and len({r.date for r in rows}) == 1
    by_case = {r.case: r for r in rows}
    assert by_case["device"].metrics["device"] == "cpu"
    assert by_case["device"].metrics["matmul_tflops"] > 0
    assert "flops_formula" in by_case["device"].notes
    run = by_case["tiny"].metrics
    assert run["shape"] == "tiny" and run["tokens_per_s"] > 0 and run["precision"] == "fp32"
    assert run["model_tflops_per_step"] * 1e12 == pytest.approx(
        gpu.step_flops(gpu.build("tiny", __import__("torch").device("cpu")), 4, 32))
    assert by_case["tiny"].command.startswith("python benchmarks/gpu.py --tiny")
    assert "torch" in by_case["tiny"].libraries
    ddp = by_case["ddp_one_process"].metrics  # torchrun with one process (gloo on the CPU)
    assert ddp.get("ddp") is True and "overhead" in ddp, (ddp, by_case["ddp_one_process"].notes)


def test_nominal_peaks_match_the_longest_name(gpu):
    assert gpu.nominal_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert gpu.nominal_peak("NVIDIA H100 80GB HBM3") == ("H100", 989.4)
    assert gpu.nominal_peak("NVIDIA H200") == ("H200", 989.4)
    assert gpu.nominal_peak("cpu") == (None, None)
