"""benchmarks/gpu.py on a CPU: its code path on a tiny config, and its FLOP count
against a count by hand. The GPU figures themselves come from a GPU machine."""

from __future__ import annotations

import json

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


def test_the_script_runs_its_path_on_a_tiny_config(gpu, tmp_path):
    out = tmp_path / "gpu.json"
    gpu.main(["--tiny", "--steps", "1", "--warmup", "1", "--seq", "32", "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["matmul_tflops"] > 0
    (run,) = res["runs"]
    assert run["shape"] == "tiny" and run["tokens_per_s"] > 0 and run["precision"] == "fp32"
    assert run["model_tflops_per_step"] * 1e12 == pytest.approx(
        gpu.step_flops(gpu.build("tiny", __import__("torch").device("cpu")), 4, 32))
    ddp = res["ddp_one_process"]  # torchrun with one process (gloo on the CPU)
    assert ddp.get("ddp") is True and "overhead" in ddp, ddp


def test_nominal_peaks_match_the_longest_name(gpu):
    assert gpu.nominal_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert gpu.nominal_peak("NVIDIA H100 80GB HBM3") == ("H100", 989.4)
    assert gpu.nominal_peak("NVIDIA H200") == ("H200", 989.4)
    assert gpu.nominal_peak("cpu") == (None, None)
