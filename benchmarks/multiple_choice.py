"""`compress` on the packaged multiple-choice task (wordnet-mc): the default chain, and
the same run's teacher taken to INT8 alone (what stays within the 1-point budget when the
chain's one-epoch students do not).

    edgebert compress --set task.name=wordnet-mc --out runs/wordnet-mc
    edgebert compress benchmarks/recipes/wordnet_teacher_int8.yaml --out runs/wordnet-mc-int8
    python benchmarks/multiple_choice.py runs/wordnet-mc runs/wordnet-mc-int8
        -> benchmarks/results/multiple_choice.json

Records the task (sizes, choices, chance), the teacher's test accuracy, and for each run
every artifact's accuracy, size and latency (an input is a context with its 4 choices:
1 x 4 x 128 tokens at batch 1), with the recommended artifact against the teacher. Each
speedup is a ratio measured in one run (the teacher is timed in both).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compress_default import HERE, summary

COMMANDS = ["edgebert compress --set task.name=wordnet-mc --out runs/wordnet-mc",
            "edgebert compress benchmarks/recipes/wordnet_teacher_int8.yaml "
            "--out runs/wordnet-mc-int8"]


def main(runs: list[str]) -> None:
    first = Path(runs[0])
    stage = json.loads((first / "teacher" / "stage.json").read_text())
    teacher = json.loads((first / "teacher" / "metrics.json").read_text())
    result = {
        "task": {"name": stage["task"]["name"], "kind": stage["task"]["kind"],
                 "sizes": stage["task"]["sizes"], "choices": 4, "chance": 0.25,
                 "max_length": stage["task"]["max_length"]},
        "teacher_test_accuracy": teacher["test"]["accuracy"],
        "teacher_dev_accuracy": teacher["dev"]["accuracy"],
        "runs": [summary(Path(run)) | {"run": Path(run).name, "command": command}
                 for run, command in zip(runs, COMMANDS)],
    }
    (HERE / "results" / "multiple_choice.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"} | {
        "recommended": [{k: r[k] for k in ("run", "recommended", "accuracy", "delta_points",
                                            "speedup", "size_mb")} for r in result["runs"]]},
        indent=2))


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/wordnet-mc", "runs/wordnet-mc-int8"])
