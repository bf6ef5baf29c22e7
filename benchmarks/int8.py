"""INT8 variants of the distilled Rotten Tomatoes student against FP32 ONNX.

    python benchmarks/int8.py     # -> store rows, suite int8 (a case per artifact)

Needs the 3-layer student from `python benchmarks/distill.py`. Exports FP32
ONNX, quantizes one artifact per (target, mode) through the real CLI, and
times them all at batch 1, sequence 128, 2 threads: each artifact in its own
process, alternated in one run. `speedup` is over the plain FP32 export (what a
user of any exporter runs); `speedup_over_fp32_tuned` over the FP32 graph with
the same fusions and SkipLayerNormalization split as the INT8 ones, so the
graph work is not credited to INT8.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from common import RUNS, record, run, script_command, usage

SUITE = "int8"
STUDENT = Path(os.environ.get("EDGEBERT_INT8_MODEL", RUNS / "student_distilled_3l"))
VARIANTS = {
    "dynamic_x86-avx2": ["--target", "x86-avx2", "--mode", "dynamic"],
    "dynamic_x86-vnni": ["--target", "x86-vnni", "--mode", "dynamic"],
    "static_x86-avx2_minmax": ["--target", "x86-avx2", "--mode", "static"],
    "static_arm64_minmax": ["--target", "arm64", "--mode", "static"],
}


def tuned_fp32(fp32: Path, out: Path) -> Path:
    """The FP32 export fused and split exactly as `edgebert quantize` prepares its input."""
    import shutil

    from edgebert.stages.quantize.onnx import optimize, split_skip_layernorm

    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((fp32 / "config.json").read_text())
    shutil.copy2(fp32 / "config.json", out / "config.json")  # the timing inputs' vocabulary
    model = optimize(fp32 / "model.onnx", out / "model.onnx", config["num_attention_heads"],
                     config["hidden_size"], config["num_hidden_layers"]).path
    split_skip_layernorm(model)
    return model


def main() -> None:
    root = RUNS / "int8"
    fp32 = root / "fp32_onnx"
    run(["edgebert", "export", "--model", str(STUDENT), "--format", "onnx", "--out", str(fp32)])
    f = json.loads((fp32 / "metrics.json").read_text())
    rows = {"fp32_onnx": {"size_mb": round(f["size_mb"], 2), "test_accuracy": f["test"]["accuracy"],
                          "max_abs_diff_vs_pytorch": f["parity"]["max_abs_diff"],
                          "top1_agreement_vs_pytorch": f["parity"]["top1_agreement"]}}
    paths = {"fp32_onnx": str(fp32 / "model.onnx"),
             "fp32_onnx_tuned": str(tuned_fp32(fp32, root / "fp32_onnx_tuned"))}
    rows["fp32_onnx_tuned"] = {"what": "the FP32 export with the graph work the INT8 models "
                                       "get (ORT's BERT fusions, SkipLayerNormalization split): "
                                       "what INT8 alone buys is the speedup over this one"}
    arm64 = {"checked": False, "reason": "no arm64 variant in this run"}
    for name, args in VARIANTS.items():
        out = root / name
        cmd = ["edgebert", "quantize", "--model", str(STUDENT), *args, "--max-drop", "1.0",
               "--out", str(out)]
        run(cmd)
        m = json.loads((out / "metrics.json").read_text())
        rows[name] = {"size_mb": round(m["size_mb"], 2), "test_accuracy": m["test"]["accuracy"],
                      "delta_vs_fp32": round(m["delta_vs_fp32"]["test"], 2),
                      "top1_agreement": m["parity_vs_fp32"]["top1_agreement"],
                      "max_abs_diff": m["parity_vs_fp32"]["max_abs_diff"],
                      "fused_nodes": m["fused_nodes"], "excluded_nodes": m["excluded_nodes"],
                      "smaller_than_fp32": round(m["fp32_onnx_mb"] / m["size_mb"], 2),
                      "command": shlex.join(cmd)}
        paths[name] = str(out / "model.onnx")
        if m.get("arm64_emulation"):
            arm64 = m["arm64_emulation"]  # parity under qemu, or the reason it did not run

    from edgebert.bench.latency import interleaved

    # the config.json beside each model.onnx gives the vocabulary for the timing inputs
    lat = interleaved(paths, rounds=8, runs=40, warmup=20)
    for name, row in rows.items():
        row["p50_ms"] = round(lat[name]["p50_ms"], 3)
        row["speedup"] = round(lat["fp32_onnx"]["p50_ms"] / lat[name]["p50_ms"], 2)
        row["speedup_over_fp32_tuned"] = round(lat["fp32_onnx_tuned"]["p50_ms"]
                                               / lat[name]["p50_ms"], 2)
    best = max((n for n in rows if "delta_vs_fp32" in rows[n]
                and abs(rows[n]["delta_vs_fp32"]) <= 1.0),
               key=lambda n: rows[n]["speedup"], default=None)
    print(json.dumps(rows, indent=2))
    record(SUITE, rows | {"arm64_emulation": arm64}, threads=2,
           command=script_command(__file__), notes={
               "model": str(STUDENT), "best_within_1_point": best,
               "latency": "ONNX Runtime, batch 1, sequence 128, 2 intra-op threads; each model "
                          "in its own process, 8 alternated rounds x 40 runs after 20 warm-up"})


if __name__ == "__main__":
    usage(__doc__)
    main()
