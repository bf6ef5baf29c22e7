"""Artifacts written under one transformers version open and score the same under another.

Needs a second interpreter with edgebert and another transformers installed, named by
EDGEBERT_OTHER_PYTHON; `.ci/newest` sets it (the newest-releases venv against the pinned
one). Skipped otherwise, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("cross_version.py")
OTHER = os.environ.get("EDGEBERT_OTHER_PYTHON")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not OTHER, reason="set EDGEBERT_OTHER_PYTHON to a Python with another transformers "
                      "(.ci/newest does)")]


def _run(python: str, *args: str) -> str:
    done = subprocess.run([python, str(WORKER), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import transformers; print(transformers.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("direction", ["this->other", "other->this"])
def test_artifacts_open_and_score_the_same_across_versions(direction, tmp_path):
    here, there = sys.executable, OTHER
    writer, reader = (here, there) if direction == "this->other" else (there, here)
    assert _version(writer) != _version(reader), "both interpreters have the same transformers"
    _run(writer, "make", str(tmp_path))
    written = json.loads(_run(writer, "score", str(tmp_path)).splitlines()[-1])
    read = json.loads(_run(reader, "score", str(tmp_path)).splitlines()[-1])
    assert written["pruned"]["q_widths"] != written["teacher"]["q_widths"]  # heads were cut
    for name in ("teacher", "pruned"):
        a, b = written[name], read[name]
        assert a["q_widths"] == b["q_widths"]
        diff = max(abs(x - y) for ra, rb in zip(a["logits"], b["logits"]) for x, y in zip(ra, rb))
        assert diff < 1e-5, f"{name}: max |delta logits| {diff}"
        assert a["dev"]["accuracy"] == b["dev"]["accuracy"]
