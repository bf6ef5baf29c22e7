"""Fine-tune the packaged MiniLM into a teacher and record what it reaches.

    python benchmarks/teacher.py rt      # Rotten Tomatoes -> suite teacher, case rotten-tomatoes
    python benchmarks/teacher.py wnut    # WNUT NER        -> suite teacher, case wnut-ner

Runs the real `edgebert finetune` command in a fresh run directory, on the CPU
of whatever machine runs it, and copies the artifact's metrics into the row. Run under
another stack (a venv with newer transformers), the row records that stack's versions.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys

import common
from common import record, run, usage

SUITE = "teacher"
CASES = {"rt": "rotten-tomatoes", "wnut": "wnut-ner"}
RUNS = {
    "rt": ["--model", "minilm-l6", "--task", "rotten-tomatoes", "--epochs", "3", "--lr", "5e-5",
           "--batch-size", "32", "--eval-every", "100", "--patience", "4"],
    "wnut": ["--model", "minilm-l6", "--task", "wnut-ner", "--epochs", "10", "--lr", "1e-4",
             "--batch-size", "16", "--eval-every", "100", "--patience", "5"],
}


def main(which: str) -> None:
    out = common.RUNS / f"teacher_{which}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
    cmd = ["edgebert", "finetune", *RUNS[which], "--out", str(out)]
    wall = run(cmd)
    metrics = json.loads((out / "metrics.json").read_text())
    metric = metrics["metric"]
    result = {
        "examples": {"train": metrics["train"]["examples"], "dev": metrics["dev"]["examples"],
                     "test": metrics["test"]["examples"]},
        "train_seconds": round(metrics["train"]["seconds"], 1),
        "wall_seconds": round(wall, 1),
        "steps": metrics["train"]["steps"],
        "best_step": metrics["train"]["best_step"],
        "params": metrics["params"],
        "size_mb": round(metrics["size_mb"], 2),
    }
    if metric == "accuracy":
        result |= {"test_accuracy": metrics["test"]["accuracy"],
                   "dev_accuracy": metrics["dev"]["accuracy"],
                   "test_f1": metrics["test"]["f1"], "test_mcc": metrics["test"]["mcc"]}
    else:
        result |= {"test_entity_f1": metrics["test"]["entity_f1"],
                   "dev_entity_f1": metrics["dev"]["entity_f1"],
                   "test_entity_precision": metrics["test"]["entity_precision"],
                   "test_entity_recall": metrics["test"]["entity_recall"]}
    print(json.dumps(result, indent=2))
    record(SUITE, {CASES[which]: result}, command=shlex.join(cmd))


if __name__ == "__main__":
    usage(__doc__)
    main(sys.argv[1] if len(sys.argv) > 1 else "rt")
