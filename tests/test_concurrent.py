"""Two runs into one output at once: the second is refused in one line that names the
first (exit 2) and leaves nothing behind; a holder killed with SIGKILL blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from helpers import run_cli

HOLD = """import sys, time
from pathlib import Path
from edgebert.artifact import lock
lock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(120)
"""
"""A second process that holds a directory the way every run holds its output."""


@contextmanager
def held(path: Path):
    """`path` held by another live process for the length of the block; then it is
    killed with SIGKILL, as a crashed run is."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True, env=os.environ)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def listing(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def refused_by(holder: subprocess.Popen, code: int, output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2, output
    assert len(lines) == 1 and "Traceback" not in output, output
    assert f"in use by pid {holder.pid} on " in lines[0], output
    return lines[0]


def test_a_second_compress_into_a_run_in_use(tiny_teacher, tmp_path):
    run = tmp_path / "same"
    with held(run) as holder:
        before = listing(tmp_path)
        code, output = run_cli("compress", "tiny", "--out", run,
                               "--set", f"teacher.model={tiny_teacher}",
                               "--set", "teacher.finetuned=true")
        line = refused_by(holder, code, output)
        assert line.startswith(f"error: {run}: in use") and "--out" in line
        assert listing(tmp_path) == before  # no run directory, no recipe.yaml, no .partial


def test_a_second_stage_into_an_output_in_use_then_after_its_holder_is_killed(tiny_teacher,
                                                                              tmp_path):
    out = tmp_path / "student"
    cmd = ["distill", "--teacher", tiny_teacher, "--layers", "0", "--max-steps", "1",
           "--threads", "1", "--out", out]
    with held(out) as holder:
        before = listing(tmp_path)
        refused_by(holder, *run_cli(*cmd))
        assert listing(tmp_path) == before  # no student, no student.partial
    # the killed holder's lock file is still there, its lock gone with the process
    assert (tmp_path / "student.lock").exists()
    code, output = run_cli(*cmd)
    assert code == 0, output
    assert (out / "metrics.json").exists()
    assert not (tmp_path / "student.lock").exists()  # a finished stage removes its lock
