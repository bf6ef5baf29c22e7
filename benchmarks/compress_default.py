"""Summarise a finished `edgebert compress` run of the default recipe.

    python3 -m venv .venv && .venv/bin/pip install -e '.[full]' -c constraints/pinned.txt &&
        .venv/bin/edgebert compress
    python benchmarks/compress_default.py runs/default [WALL_SECONDS]
        -> a store row, suite compress_default, case rotten-tomatoes

WALL_SECONDS is the wall time of the command above, install included, when it
was timed from outside (`/usr/bin/time`); else the sum of the stage times.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import record, usage

SUITE = "compress_default"
SETUP = ("python3 -m venv .venv && .venv/bin/pip install -e '.[full]' -c constraints/pinned.txt"
         " && .venv/bin/edgebert compress")
"""The README's first command: the run this script summarises."""


def summary(run: Path, wall: float | None = None) -> dict:
    """The recommended artifact against the teacher, the bars, and every row of a run."""
    report = json.loads((run / "report.json").read_text())
    timings = json.loads((run / "timings.json").read_text())
    rows = {r["artifact"]: r for r in report["rows"]}
    teacher = rows[report["teacher"]]
    rec = report.get("recommended", {}).get("x86")
    best = rows.get(rec, {})
    wall = wall or round(sum(timings.values()), 1)
    return {
        "teacher_accuracy": teacher["accuracy"],
        "teacher_p50_ms": teacher.get("p50_ms"),
        "recommended": rec,
        "accuracy": best.get("accuracy"),
        "delta_points": best.get("delta_vs_teacher"),
        "delta_se": best.get("delta_se"),
        "speedup": best.get("speedup_vs_teacher"),
        "p50_ms": best.get("p50_ms"),
        "size_mb": best.get("size_mb"),
        "recommended_arm64": report.get("recommended", {}).get("arm64"),
        "weak_teacher": report.get("weak_teacher"),
        "wall_seconds": wall,
        "stage_seconds": timings,
        "bars": {"speedup_at_least_10x": (best.get("speedup_vs_teacher") or 0) >= 10,
                 "drop_at_most_1_point": (best.get("delta_vs_teacher") or -99) >= -1.0,
                 "size_at_most_10_mb": (best.get("size_mb") or 99) <= 10,
                 "under_30_minutes": wall < 1800},
        "rows": [{k: r.get(k) for k in ("artifact", "format", "precision", "target", "params",
                                        "size_mb", "accuracy", "delta_vs_teacher", "delta_se",
                                        "p50_ms", "speedup_vs_teacher", "latency_source")}
                 for r in report["rows"]],
    }


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/default")
    result = summary(run, float(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    record(SUITE, {"rotten-tomatoes": result}, threads=2, command=SETUP,
           notes={"run": str(run)})


if __name__ == "__main__":
    usage(__doc__)
    main()
