"""The default `compress` chain on each packaged task, unchanged.

    python benchmarks/tasks.py [TASK ...]     # -> store rows, suite tasks, a case per task
    python benchmarks/tasks.py --table        # the docs table (docs/benchmarks.md), from the store

For each task (default: every packaged text-classification and regression task), runs
`edgebert compress --set task.name=TASK` into `$EDGEBERT_BENCH_RUNS/tasks/TASK` (a
finished run is reused; a killed one resumes) and records its teacher's test metric and
the recommended artifact per target: its metric, the drop against the teacher (points,
or the metric's own units x 100 for Pearson), size, speedup, and the run's wall time.
Each task's row is appended as its run ends; the table shows each task's newest row.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import common
from common import record, run, usage
from compress_default import summary

SUITE = "tasks"
RUNS = common.RUNS / "tasks"
TASKS = ["rotten-tomatoes", "wnut-ner", "sms-spam", "trec-6", "trec-50", "vader-movies",
         "vader-amazon"]


def task_row(run: Path, wall: float, cmd: list[str]) -> dict:
    """The store's row of a finished `compress` run."""
    teacher = json.loads((run / "teacher" / "metrics.json").read_text())
    trained = teacher.get("train") or {}
    return summary(run) | {
        "metric": teacher["metric"],
        "teacher_test": {k: v for k, v in teacher["test"].items() if k != "outcomes"},
        "teacher_train": {"examples": trained.get("examples"), "steps": trained.get("steps"),
                          "epochs": (trained.get("history") or [{}])[-1].get("epoch")},
        "this_invocation_seconds": wall, "command": shlex.join(cmd)}


def main(tasks: list[str]) -> None:
    for task in tasks:
        out = RUNS / task
        cmd = ["edgebert", "compress", "--set", f"task.name={task}", "--out", str(out)]
        row = task_row(out, round(run(cmd), 1), cmd)
        print(json.dumps({k: row[k] for k in ("metric", "teacher_accuracy", "recommended",
                                              "accuracy", "delta_points", "speedup",
                                              "size_mb", "recommended_arm64")}), flush=True)
        record(SUITE, {task: row}, threads=2, command=row["command"])


def delta(row: dict) -> str:
    """Δ vs the teacher, with its paired standard error where the report has one."""
    se = row.get("delta_se")
    return f"{row['delta_vs_teacher']:+.2f}" + (f" ± {se:.2f}" if se is not None else "")


def table(results: dict) -> str:
    """The benchmark page's table (docs/benchmarks.md), from {"tasks": {label: row}}."""
    lines = ["| task | metric | train | teacher (epochs) | x86 artifact | its metric | "
             "Δ points | size | speedup | arm64 artifact, Δ | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task, r in results["tasks"].items():
        rows = {x["artifact"]: x for x in r["rows"]}
        arm = rows.get(r.get("recommended_arm64") or "", {})
        t = r.get("teacher_train") or {}
        epochs = f" ({t['epochs']:.1f})" if t.get("epochs") else ""
        # the report's flag: an artifact beats the teacher by more than the budget
        weak = ", **weak**" if r.get("weak_teacher") else ""
        arms = [x for x in r["rows"] if x.get("target") == "arm64" and x.get("accuracy")]
        best = max(arms, key=lambda x: x["accuracy"], default=None)
        arm_cell = (f"{r['recommended_arm64']}, {delta(arm)}" if arm
                    else f"none within the budget (best: {best['artifact']}, "
                         f"{delta(best)})" if best
                    else "none within the budget")
        if r["recommended"]:
            x86 = (f"{r['recommended']} | {100 * r['accuracy']:.1f} | "
                   f"{delta(rows[r['recommended']])} | "
                   f"{r['size_mb']:.1f} MB | {r['speedup']:.1f}x")
        else:  # the report's "none within the budget": the most accurate x86 candidate,
            # the fastest of those that tie
            cands = [x for x in r["rows"] if x.get("p50_ms") and x["artifact"] != "teacher"]
            b = max(cands, key=lambda x: (x["accuracy"], -x["p50_ms"]))
            x86 = (f"none within the budget (best: {b['artifact']}) | {100 * b['accuracy']:.1f} | "
                   f"{delta(b)} | {b['size_mb']:.1f} MB | "
                   f"{b['speedup_vs_teacher']:.1f}x")
        lines.append(
            f"| {task} | {r['metric']} | {t.get('examples') or '-'} | "
            f"{100 * r['teacher_accuracy']:.1f}{epochs}{weak} | {x86} | {arm_cell} | "
            f"{r['wall_seconds'] / 60:.0f} min |")
    return "\n".join(lines)


if __name__ == "__main__":
    usage(__doc__)
    if sys.argv[1:] == ["--table"]:  # the store's rows; tables.py writes it into the docs
        import tables
        print(tables.tasks())
    else:
        main(sys.argv[1:] or TASKS)
