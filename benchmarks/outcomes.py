"""Add per-example test outcomes to the artifacts of a run made before they were recorded,
then write its report again, so every row gets the paired standard error of its Δ.

Usage: python benchmarks/outcomes.py RUN [RUN ...] [--budget 1.0]

Each artifact is scored on the test split again the way its stage scored it (the tokenizer-
in-the-graph export: its parent INT8 graph one text at a time, which its export checked it
equals); outcomes are written only where that score equals the recorded one, so a row's SE
always belongs to the figure beside it. Artifacts that already have outcomes are left as
they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgebert.artifact import parent_in_run, write_json
from edgebert.artifacts_io import artifact_forward, open_artifact
from edgebert.metrics import points
from edgebert.predict import one_at_a_time
from edgebert.report.collect import artifacts
from edgebert.report.render import write_report


def forward_of(run: Path, path: Path, stage: dict):
    opened = open_artifact(path)
    if stage.get("input") != "text":
        return opened, artifact_forward(opened)
    from edgebert.predict import ort_forward
    from edgebert.formats import session

    parent = parent_in_run(run, stage["parent"])
    if parent is None or not (parent / "model.onnx").exists():
        return opened, None
    return opened, one_at_a_time(ort_forward(session(parent / "model.onnx"), opened.kind))


def fill(run: Path) -> list[str]:
    said = []
    for path in artifacts(run):
        metrics = json.loads((path / "metrics.json").read_text())
        test, metric = metrics.get("test") or {}, metrics.get("metric")
        name = str(path.relative_to(run))
        if "outcomes" in test or metric not in test:
            continue
        stage = json.loads((path / "stage.json").read_text())
        opened, forward = forward_of(run, path, stage)
        if forward is None:
            said.append(f"{name}: no parent graph to score; left without outcomes")
            continue
        got = opened.score(forward, "test")
        if "outcomes" not in got:
            said.append(f"{name}: its kind records no outcomes")
            continue
        diff = points(got, metric) - points(test, metric)
        if abs(diff) > 1e-6:
            said.append(f"{name}: scored {diff:+.4f} points off its recorded test {metric}; "
                        f"left without outcomes")
            continue
        metrics["test"]["outcomes"] = got["outcomes"]
        write_json(path / "metrics.json", metrics)
        said.append(f"{name}: outcomes added")
    return said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--budget", type=float, default=1.0, help="the report's budget, points")
    args = ap.parse_args()
    for run in args.runs:
        for line in fill(run):
            print(f"{run.name}: {line}", flush=True)
        report = write_report(run, "teacher", budget=args.budget)
        for r in report["rows"]:
            if r.get("delta_se") is not None:
                print(f"{run.name}: {r['artifact']:<28} {r['delta_vs_teacher']:+.2f} "
                      f"± {r['delta_se']:.2f}", flush=True)


if __name__ == "__main__":
    main()
