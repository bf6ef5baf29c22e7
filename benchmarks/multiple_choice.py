"""The default `compress` chain on the packaged multiple-choice task (wordnet-mc).

    edgebert compress --set task.name=wordnet-mc --out runs/wordnet-mc
    python benchmarks/multiple_choice.py runs/wordnet-mc
        -> benchmarks/results/multiple_choice.json

Records the task (sizes, choices, chance), the teacher's test accuracy, and every
artifact's accuracy, size and latency (each input is a context with its 4 choices:
[1, 4, seq] tokens), with the recommended artifact against the teacher.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compress_default import HERE, summary


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/wordnet-mc")
    stage = json.loads((run / "teacher" / "stage.json").read_text())
    teacher = json.loads((run / "teacher" / "metrics.json").read_text())
    result = {
        "task": {"name": stage["task"]["name"], "kind": stage["task"]["kind"],
                 "sizes": stage["task"]["sizes"], "choices": 4, "chance": 0.25,
                 "max_length": stage["task"]["max_length"]},
        "teacher_test_accuracy": teacher["test"]["accuracy"],
        "teacher_dev_accuracy": teacher["dev"]["accuracy"],
    } | summary(run) | {
        "command": "edgebert compress --set task.name=wordnet-mc --out runs/wordnet-mc"}
    (HERE / "results" / "multiple_choice.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "machines")},
                     indent=2))


if __name__ == "__main__":
    main()
