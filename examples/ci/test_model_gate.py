"""A pytest gate for your repository: `pytest examples/ci/test_model_gate.py`.

Set MODEL (the artifact to ship) and BASELINE_MODEL (the accepted one: a released
artifact, or the main branch's in a git worktree). `edgebert check` benches both in one
interleaved run on this machine, so they share its noise, and the test fails on a
confident slowdown or an accuracy drop, with the gate's table in the failure message.
"""

import os
import subprocess
import sys

import pytest

MODEL = os.environ.get("MODEL", "models/classifier")
BASELINE_MODEL = os.environ.get("BASELINE_MODEL", "../main/models/classifier")


@pytest.mark.skipif(not os.path.exists(BASELINE_MODEL), reason=f"no model at {BASELINE_MODEL}")
def test_model_is_not_slower_or_worse():
    gate = subprocess.run([sys.executable, "-m", "edgebert.cli", "check", "--baseline-model",
                           BASELINE_MODEL, "--candidate-model", MODEL, "--max-slowdown", "5%",
                           "--max-drop-vs-baseline", "0.5"], capture_output=True, text=True)
    assert gate.returncode == 0, gate.stdout + gate.stderr
