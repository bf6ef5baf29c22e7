"""SIGKILL each long stage at seeded random points: the same command resumes, no
artifact directory is ever half written, and the result equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import sentiment_rows

pytestmark = pytest.mark.slow


def stage_cmd(stage: str, tiny_teacher: Path, tmp: Path, out: Path) -> list[str]:
    common = ["--max-steps", "40", "--save-every", "2", "--eval-every", "10", "--threads", "1",
              "--batch-size", "8", "--out", str(out)]
    if stage == "distill":
        return ["distill", "--teacher", str(tiny_teacher), "--layers", "0,2", *common]
    if stage == "prune":
        return ["prune", "--model", str(tiny_teacher), "--heads", "1", "--ffn", "0.5",
                "--recover", "distill", "--teacher", str(tiny_teacher), *common]
    corpus = tmp / "corpus.txt"
    if not corpus.exists():
        rows = sentiment_rows(300)
        corpus.write_text("".join(f"{rows[i]['text']}.\n{rows[i + 1]['text']}.\n\n"
                                  for i in range(0, 300, 2)))
    return ["pretrain", "--corpus", str(corpus), "--tokenizer", str(tiny_teacher),
            "--max-length", "32", "--cache", str(tmp / "cache"), *common]


def run(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgebert.cli", *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=os.environ | {"EDGEBERT_QUIET": "1"})


def saved_step(checkpoint: Path) -> int:
    """The step of the stage's newest whole checkpoint (train.py swaps a new one in through
    `checkpoint.old`), -1 where there is none."""
    for path in (checkpoint, checkpoint.with_name("checkpoint.old")):
        try:
            return json.loads((path / "state.json").read_text())["step"]
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return -1


def result(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    return m.get("test") or m.get("heldout")


# distillation is killed mid-stage by tests/test_compress.py, fine-tuning by test_finetune.py
@pytest.mark.parametrize("stage", ["prune", "pretrain"])
def test_sigkill_at_random_points_then_resume(stage, tiny_teacher, tmp_path):
    ref = tmp_path / "ref"
    reference = run(stage_cmd(stage, tiny_teacher, tmp_path, ref))
    out = tmp_path / "out"
    rng = random.Random(f"{stage}-kill")
    # one kill per stage, beside the uninterrupted run (one thread each): CI's ten minutes
    p = run(stage_cmd(stage, tiny_teacher, tmp_path, out))
    # Past the first epoch (about 20 of the 40 steps), where the resumed run must train on
    # that epoch's own order: wait for a seeded checkpoint step there and kill at once, so the
    # kill lands inside a step or a checkpoint write (the polling phase varies) with at least
    # ten steps left. A kill timed from the start lands wherever import speed puts it, and a
    # fixed sleep after the target lets a fast machine finish the stage first.
    checkpoint = out.with_name("out.partial") / "checkpoint"
    target = rng.randint(20, 30)
    deadline = time.time() + 240
    while p.poll() is None and time.time() < deadline and saved_step(checkpoint) < target:
        time.sleep(0.005)
    kills = int(p.poll() is None)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_after = saved_step(checkpoint)
    assert not out.exists(), "the kill landed after the stage finished: nothing was resumed"
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    # never half written: `out` exists only when finished
    assert not out.exists() or (out / "metrics.json").exists()
    p = run(stage_cmd(stage, tiny_teacher, tmp_path, out))
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    assert kills >= 1 and killed_after >= target, killed_after
    assert not out.with_name("out.partial").exists()
    assert result(out) == result(ref)  # exact resume on the CPU
