"""Intel Neural Compressor beside the ONNX Runtime guard: same student, data and budget.

    python benchmarks/int8_inc.py     # -> store rows, suite int8_inc (a case per artifact)

Needs the 3-layer student from `python benchmarks/distill.py` and the ORT artifacts
from `python benchmarks/int8.py` (FP32 ONNX and dynamic x86-avx2 INT8). Runs
`edgebert quantize --engine inc` (Neural Compressor's `autotune` on a PT2E graph,
dev accuracy as its evaluation, 1-point budget), then times FP32 PyTorch, FP32
ONNX, the ORT INT8 model and the INC INT8 program (compiled with `torch.compile`,
as INC intends) with `edgebert bench`: each in its own process, rounds
alternated, batch 1, sequence 128, 2 threads.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from common import record, run, RUNS, script_command, usage

SUITE = "int8_inc"
STUDENT = RUNS / "student_distilled_3l"
ORT = {"fp32_onnx": RUNS / "int8" / "fp32_onnx", "ort_int8": RUNS / "int8" / "dynamic_x86-avx2"}
INC = RUNS / "int8" / "inc_x86-avx2"


def main() -> None:
    missing = [str(p) for p in (STUDENT, *ORT.values()) if not (p / "metrics.json").exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run benchmarks/distill.py and benchmarks/int8.py")
    cmd = ["edgebert", "quantize", "--model", str(STUDENT), "--engine", "inc", "--target",
           "x86-avx2", "--mode", "dynamic", "--max-drop", "1.0", "--out", str(INC)]
    run(cmd)
    paths = {"fp32_pytorch": STUDENT, **ORT, "inc_int8": INC}
    bench_out = RUNS / "int8" / "inc_bench.json"
    bench = ["edgebert", "bench", *map(str, paths.values()), "--batch", "1", "--seq", "128",
             "--threads", "2", "--rounds", "8", "--runs", "30", "--out", str(bench_out)]
    run(bench)
    by_path = {Path(r["artifact"]).name: r for r in json.loads(bench_out.read_text())["results"]}
    p50 = {k: by_path[p.name]["p50_ms"] for k, p in paths.items()}

    rows = {}
    for name, path in paths.items():
        m = json.loads((path / "metrics.json").read_text())
        rows[name] = {"test_accuracy": m["test"]["accuracy"], "dev_accuracy": m["dev"]["accuracy"],
                      "size_mb": round(m["size_mb"], 2), "p50_ms": round(p50[name], 3),
                      "speedup_over_fp32_pytorch": round(p50["fp32_pytorch"] / p50[name], 2),
                      "speedup_over_fp32_onnx": round(p50["fp32_onnx"] / p50[name], 2)}
        if "parity_vs_fp32" in m:
            rows[name] |= {"delta_vs_fp32_test": round(m["delta_vs_fp32"]["test"], 2),
                           "top1_agreement": m["parity_vs_fp32"]["top1_agreement"],
                           "max_abs_diff": m["parity_vs_fp32"]["max_abs_diff"]}
    inc, ort = rows["inc_int8"], rows["ort_int8"]
    winner = "ort" if (ort["p50_ms"] < inc["p50_ms"]
                       and ort["test_accuracy"] >= inc["test_accuracy"] - 0.01) else "inc"
    print(json.dumps(rows, indent=2))
    record(SUITE, rows, threads=2, command=script_command(__file__), notes={
        "model": str(STUDENT), "default_engine_by_this_run": winner,
        "inc_command": shlex.join(cmd), "bench_command": shlex.join(bench),
        "latency": "edgebert bench: batch 1, sequence 128, 2 threads, each artifact in its own "
                   "process, 8 alternated rounds x 30 runs after 10 warm-up; INC's program is a "
                   "quantize/dequantize reference graph, timed under torch.compile (Inductor "
                   "lowers it to INT8 kernels; the first warm-up call compiles)"})


if __name__ == "__main__":
    usage(__doc__)
    main()
