"""Where training runs: `--device`, a precision the GPU lacks, and a torchrun world whose
ranks disagree are each refused with one line and exit 2, before any work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import run_cli


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_is_one_line(tiny_bert, sentiment_csv, tmp_path):
    out = tmp_path / "teacher"
    code, output = run_cli("finetune", "--model", tiny_bert, "--task", sentiment_csv,
                           "--kind", "classification", "--device", "cuda", "--out", out)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2 and lines == [lines[-1]], output
    assert lines[-1].startswith("error: --device cuda: no CUDA GPU")
    assert not out.exists()


def test_device_cpu_trains_on_the_cpu(tiny_bert, sentiment_csv, tmp_path):
    code, output = run_cli("finetune", "--model", tiny_bert, "--task", sentiment_csv,
                           "--kind", "classification", "--device", "cpu", "--max-steps", "2",
                           "--out", tmp_path / "t")
    assert code == 0, output
    assert (tmp_path / "t" / "model.safetensors").exists()


def test_bf16_on_a_gpu_without_it_is_refused(monkeypatch):
    """A GPU without bf16 (a T4, say) is faked through torch.cuda's own queries: this
    machine has no GPU to ask."""
    from edgebert.config import TrainConfig
    from edgebert.errors import UserError
    from edgebert.train import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    with pytest.raises(UserError, match=r"--precision bf16: Tesla T4 has no bf16"):
        check_device(TrainConfig(precision="bf16"))
    check_device(TrainConfig(precision="fp16"))  # what it suggests is accepted
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(UserError, match=r"LOCAL_RANK 1: only 1 GPU"):
        check_device(TrainConfig())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_ranks_that_disagree_are_refused(tiny_bert, sentiment_csv, tmp_path):
    """Two ranks of one world (gloo, as torchrun would set them up), started with
    different --batch-size: both stop with the same line before loading anything."""
    env = os.environ | {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port()), "EDGEBERT_QUIET": "1",
                        "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "edgebert.cli", "finetune", "--model", str(tiny_bert),
         "--task", str(sentiment_csv), "--kind", "classification", "--device", "cpu",
         "--batch-size", str(batch), "--out", str(tmp_path / "teacher")],
        env=env | {"RANK": str(rank), "LOCAL_RANK": str(rank)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank, batch in ((0, 8), (1, 16))]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, output in zip(procs, outputs):
        lines = [ln for ln in output.splitlines() if ln.strip()]
        assert p.returncode == 2, output
        assert "Traceback" not in output
        assert lines[-1] == ("error: torchrun: rank 1 was started with --batch-size 16, "
                             "rank 0 with 8; start every rank with the same command"), output
    assert not (tmp_path / "teacher").exists()
