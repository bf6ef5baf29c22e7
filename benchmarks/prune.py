"""Structured vs unstructured pruning of the distilled 3-layer student.

    python benchmarks/prune.py     # -> store rows, suite prune (parent and each variant)

Needs `python benchmarks/distill.py` first. Each variant is pruned and
recovered by distillation from the teacher through the real CLI, exported to
FP32 ONNX, and timed against the unpruned parent's FP32 ONNX (batch 1,
sequence 128, 2 threads; each model in its own process, alternated).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from common import record, run, RUNS, script_command, usage

SUITE = "prune"
PARENT = RUNS / "student_distilled_3l"
TEACHER = RUNS / "teacher_rt"
# --group-by-length: batches of similar length, about 3x faster steps on these short texts
RECOVER = ["--recover", "distill", "--teacher", str(TEACHER), "--epochs", "3", "--lr", "1e-4",
           "--batch-size", "32", "--eval-every", "100", "--patience", "4", "--group-by-length"]
VARIANTS = {
    "structured_heads50_ffn50": ["--heads", "0.5", "--ffn", "0.5"],
    "unstructured_sparsity80": ["--sparsity", "0.8"],
}


def onnx(model: Path, out: Path) -> Path:
    run(["edgebert", "export", "--model", str(model), "--format", "onnx", "--out", str(out)])
    return out / "model.onnx"


def main() -> None:
    root = RUNS / "prune"
    parent = json.loads((PARENT / "metrics.json").read_text())
    paths = {"parent": str(onnx(PARENT, root / "parent_onnx"))}
    rows = {}
    for name, args in VARIANTS.items():
        out = root / name
        cmd = ["edgebert", "prune", "--model", str(PARENT), *args, *RECOVER, "--out", str(out)]
        run(cmd)
        m = json.loads((out / "metrics.json").read_text())
        rows[name] = {"params": m["params"], "size_mb": round(m["size_mb"], 2),
                      "compressed_mb": round(m["compressed_mb"], 2),
                      "test_accuracy": m["test"]["accuracy"], "retention": m["retention"],
                      "shapes": m["shapes"], "command": shlex.join(cmd)}
        if "sparsity" in m:
            rows[name]["sparsity"] = round(m["sparsity"]["overall"], 4)
            rows[name]["sparsity_per_matrix"] = m["sparsity"]["per_matrix"]
        paths[name] = str(onnx(out, root / f"{name}_onnx"))

    from edgebert.bench.latency import interleaved

    lat = interleaved(paths, rounds=8, runs=40, warmup=20)
    for name, row in rows.items():
        row["p50_ms"] = round(lat[name]["p50_ms"], 3)
        row["speedup"] = round(lat["parent"]["p50_ms"] / lat[name]["p50_ms"], 2)
    cases = {"parent": {"params": parent["params"], "size_mb": round(parent["size_mb"], 2),
                        "compressed_mb": round(parent.get("compressed_mb", 0), 2),
                        "test_accuracy": parent["test"]["accuracy"],
                        "p50_ms": round(lat["parent"]["p50_ms"], 3),
                        "notes": {"model": str(PARENT)}}, **rows}
    for name, case in cases.items():
        case["p90_ms"] = round(lat[name]["p90_ms"], 3)
    print(json.dumps(cases, indent=2))
    record(SUITE, cases, threads=2, command=script_command(__file__), notes={
        "latency": "FP32 ONNX Runtime, batch 1, sequence 128, 2 threads; each model in its own "
                   "process, 8 alternated rounds x 40 runs"})


if __name__ == "__main__":
    usage(__doc__)
    main()
