"""The Rotten Tomatoes default chain with and without factorized embeddings.

    python benchmarks/factorized_embeddings.py [RANK]   # -> a store row, case "rank RANK"

Runs `edgebert compress` on the default recipe (INT8 for this machine only; no exports,
no bench), then the same recipe from that run's teacher with the student's word
embeddings factorized to RANK (default 128: vocabulary x 128, then 128 x 384, from the
SVD of the teacher's table, recovered by the student's distillation). Both INT8
artifacts, their FP32 parents and the teacher are then timed in one interleaved
`edgebert bench` run (batch 1, sequence 128, 2 threads), so each ratio comes from one
run. Accuracy and size come from each artifact's metrics.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import common
from common import record, run, script_command, usage

SUITE = "factorized_embeddings"
RUNS = common.RUNS / "factorized"
COMMON = ["--set", "export=[]", "--set", "quantize=[{target: native, mode: dynamic}]",
          "--set", "bench.enabled=false"]


def artifacts(run_dir: Path) -> dict[str, Path]:
    (int8,) = sorted((run_dir / "int8").iterdir())  # the one native target
    return {"student": run_dir / "student", "pruned_trimmed": run_dir / "pruned_trimmed",
            "int8": int8}


def describe(path: Path) -> dict:
    m = json.loads((path / "metrics.json").read_text())
    out = {"test_accuracy": m["test"]["accuracy"], "dev_accuracy": m["dev"]["accuracy"],
           "size_mb": round(m.get("size_mb") or 0, 2)}
    for key in ("params", "factorized_embeddings"):
        if key in m:
            out[key] = m[key]
    return out


def main(rank: int) -> None:
    plain, factored = RUNS / "default", RUNS / f"rank{rank}"
    seconds = {"default": run(["edgebert", "compress", "--out", str(plain), *COMMON])}
    seconds["factorized"] = run(
        ["edgebert", "compress", "--out", str(factored), *COMMON,
         "--set", f"teacher.model={plain / 'teacher'}", "--set", "teacher.finetuned=true",
         "--set", f"students.0.factorize_embeddings={rank}"])
    a, b = artifacts(plain), artifacts(factored)
    timed = [plain / "teacher", a["pruned_trimmed"], b["pruned_trimmed"], a["int8"], b["int8"]]
    bench = RUNS / f"bench_rank{rank}.json"
    seconds["bench"] = run(["edgebert", "bench", *map(str, timed), "--batch", "1", "--seq",
                            "128", "--rounds", "8", "--out", str(bench)])
    latency = {r["path"]: r for r in json.loads(bench.read_text())["results"]}
    teacher_ms = latency[str(plain / "teacher")]["p50_ms"]

    def row(path: Path) -> dict:
        r = latency.get(str(path), {})
        extra = {"p50_ms": r["p50_ms"], "speedup_vs_teacher": teacher_ms / r["p50_ms"]} \
            if r else {}
        return describe(path) | extra

    teacher = json.loads((plain / "teacher" / "metrics.json").read_text())
    result = {
        "rank": rank,
        "teacher": {"test_accuracy": teacher["test"]["accuracy"], "p50_ms": teacher_ms},
        "default": {k: row(p) for k, p in a.items()},
        "factorized": {k: row(p) for k, p in b.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    d, f = result["default"]["int8"], result["factorized"]["int8"]
    result["int8_delta"] = {
        "test_points": 100 * (f["test_accuracy"] - d["test_accuracy"]),
        "size_mb": f["size_mb"] - d["size_mb"],
        "latency_ratio": f["p50_ms"] / d["p50_ms"]}
    print(json.dumps(result, indent=2))
    record(SUITE, {f"rank {rank}": result}, threads=2,
           command=script_command(__file__, [rank]))


if __name__ == "__main__":
    usage(__doc__)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
