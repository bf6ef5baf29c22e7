"""On a binary task scored by the positive class's F1, why an artifact is under its teacher.

    python benchmarks/binary_threshold.py RUN [ARTIFACT ...]   # -> store rows, a case per artifact

For the teacher and each ARTIFACT of a finished `edgebert compress` run (default: student,
the trimmed pruned model and the x86 INT8 model): true and false positives and misses on
test; the decision offset (added to the positive logit margin, as a shifted classifier
bias would) that maximises F1 on dev, and test F1 with it: whether a threshold chosen on
dev, the usual fix for an imbalanced class, would close the gap; and the test texts where
the artifact and its teacher decide differently, with both margins (a row's notes: the
texts are what the suite is read for, and they are few).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common import record, script_command
from edgebert.artifacts_io import artifact_forward, open_artifact

SUITE = "binary_threshold"
OFFSETS = np.linspace(-4, 4, 161)  # logit-margin offsets tried on dev, 0.05 apart


def counts(margin: np.ndarray, labels: np.ndarray, offset: float = 0.0) -> dict:
    pred = margin + offset > 0
    tp, fp = int((pred & (labels == 1)).sum()), int((pred & (labels == 0)).sum())
    fn = int((~pred & (labels == 1)).sum())
    return {"f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


def margins(run: Path, name: str) -> dict:
    opened = open_artifact(run / name)
    if opened.task.kind not in ("classification", "pair") or len(opened.task.labels) != 2:
        raise SystemExit(f"{run / name}: not a two-class task")
    forward = artifact_forward(opened)
    out = {}
    for split in ("dev", "test"):
        logits = np.stack(opened.outputs(forward, opened.encode(split)))
        examples = opened.task.splits[split]
        out[split] = (logits[:, 1] - logits[:, 0], np.array([ex.label for ex in examples]),
                      [ex.text for ex in examples])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("artifacts", nargs="*",
                    default=["student", "pruned_trimmed", "int8/x86-avx2"])
    args = ap.parse_args()
    teacher = margins(args.run, "teacher")
    cases = {}
    for name in ["teacher", *args.artifacts]:
        m = teacher if name == "teacher" else margins(args.run, name)
        (dev, dev_y, _), (test, test_y, texts) = m["dev"], m["test"]
        dev_f1 = np.array([counts(dev, dev_y, t)["f1"] for t in OFFSETS])
        tied = OFFSETS[dev_f1 == dev_f1.max()]  # dev's F1 is flat over a range: say which
        best = tied[np.argmin(np.abs(tied))]
        test_f1 = [counts(test, test_y, t)["f1"] for t in tied]
        row = {"dev": counts(dev, dev_y), "test": counts(test, test_y),
               "dev_best_offset": float(best), "dev_best_offsets": [float(tied[0]), float(tied[-1])],
               "dev_at_offset": counts(dev, dev_y, best),
               "test_at_offset": counts(test, test_y, best),
               "test_f1_over_dev_best_offsets": [min(test_f1), max(test_f1)]}
        if name != "teacher":
            t = teacher["test"][0]
            row["notes"] = {"test_disagreements": [
                {"label": int(test_y[i]), "teacher_margin": round(float(t[i]), 2),
                 "margin": round(float(test[i]), 2), "text": texts[i]}
                for i in np.where((t > 0) != (test > 0))[0]]}
            row["test_disagreements"] = len(row["notes"]["test_disagreements"])
        cases[name] = row
        print(f"{name:24s} test F1 {row['test']['f1']:.4f} (tp {row['test']['tp']}, fp "
              f"{row['test']['fp']}, fn {row['test']['fn']}); dev's best offset "
              f"{best:+.2f} (ties {tied[0]:+.2f} to {tied[-1]:+.2f}): test F1 "
              f"{row['test_at_offset']['f1']:.4f} ({min(test_f1):.4f} to {max(test_f1):.4f})")
    record(SUITE, cases, command=script_command(__file__, [args.run, *args.artifacts]),
           notes={"run": str(args.run)})


if __name__ == "__main__":
    main()
