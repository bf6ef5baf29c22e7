"""`compress` on the packaged multiple-choice task (wordnet-mc): the default chain, and
the same run's teacher taken to INT8 alone (what stays within the 1-point budget when the
chain's one-epoch students do not).

    edgebert compress --set task.name=wordnet-mc --out runs/wordnet-mc
    edgebert compress benchmarks/recipes/wordnet_teacher_int8.yaml --out runs/wordnet-mc-int8
    python benchmarks/multiple_choice.py runs/wordnet-mc runs/wordnet-mc-int8
        -> store rows, suite multiple_choice

Runs the two commands above first where a run is not finished (`compress` reuses the
stages it finished). Records the task (sizes, choices, chance), the teacher's test
accuracy, and for each run every artifact's accuracy, size and latency (an input is a
context with its 4 choices: 1 x 4 x 128 tokens at batch 1), with the recommended artifact
against the teacher. Each speedup is a ratio measured in one run (the teacher is timed in
both).
"""

from __future__ import annotations

import json
from pathlib import Path

from common import record, run, script_command
from compress_default import summary

SUITE = "multiple_choice"
CASES = {"default recipe": ["edgebert", "compress", "--set", "task.name=wordnet-mc"],
         "teacher int8 recipe": ["edgebert", "compress",
                                 "benchmarks/recipes/wordnet_teacher_int8.yaml"]}
"""Each run's case (under wordnet-mc/) and the command that makes it, less its --out."""


def main(runs: list[str]) -> None:
    commands = [[*cmd, "--out", out] for cmd, out in zip(CASES.values(), runs)]
    for cmd, out in zip(commands, runs):
        if not (Path(out) / "report.json").exists():
            run(cmd)
    first = Path(runs[0])
    stage = json.loads((first / "teacher" / "stage.json").read_text())
    teacher = json.loads((first / "teacher" / "metrics.json").read_text())
    cases = {"wordnet-mc teacher": {
        "task": {"name": stage["task"]["name"], "kind": stage["task"]["kind"],
                 "sizes": stage["task"]["sizes"], "choices": 4, "chance": 0.25,
                 "max_length": stage["task"]["max_length"]},
        "teacher_test_accuracy": teacher["test"]["accuracy"],
        "teacher_dev_accuracy": teacher["dev"]["accuracy"]}}
    for name, cmd, out in zip(CASES, commands, runs):
        cases[f"wordnet-mc/{name}"] = summary(Path(out)) | {
            "command": " ".join(cmd), "notes": {"run": str(out)}}
        print(name, json.dumps({k: cases[f"wordnet-mc/{name}"][k] for k in (
            "recommended", "accuracy", "delta_points", "speedup", "size_mb")}), flush=True)
    record(SUITE, cases, threads=2, command=script_command(__file__, runs))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", default=["runs/wordnet-mc", "runs/wordnet-mc-int8"],
                    help="the default recipe's run, then the teacher-INT8 recipe's")
    main(ap.parse_args().runs)
