"""A pytest gate for your repository: `pytest examples/ci/test_model_gate.py`.

Set MODEL (the artifact to ship) and BASELINE (a bench JSON you committed from
the same machine type). The test fails on a confident slowdown or an
accuracy drop, with the gate's table in the failure message.
"""

import os
import subprocess
import sys

import pytest

MODEL = os.environ.get("MODEL", "models/classifier")
BASELINE = os.environ.get("BASELINE", "benchmarks/baseline.json")


@pytest.mark.skipif(not os.path.exists(BASELINE), reason=f"no baseline at {BASELINE}")
def test_model_is_not_slower_or_worse(tmp_path):
    cand = tmp_path / "candidate.json"
    subprocess.run([sys.executable, "-m", "edgebert.cli", "bench", MODEL, "--rounds", "8",
                    "--out", str(cand)], check=True)
    gate = subprocess.run([sys.executable, "-m", "edgebert.cli", "check", "--baseline", BASELINE,
                           "--candidate", str(cand), "--max-slowdown", "5%",
                           "--max-drop-vs-baseline", "0.5"], capture_output=True, text=True)
    assert gate.returncode == 0, gate.stdout + gate.stderr
