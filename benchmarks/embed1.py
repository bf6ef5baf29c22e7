"""The 1-bit word table with tuned codebooks against a run's own INT8 model: size and accuracy.

    python benchmarks/embed1.py RUN [RUN ...] [--target x86-avx2] -> benchmarks/results/embed1.json

For each `compress` run directory, the INT8 step of int8/TARGET is made again from the same
model with the same options (its stage.json's config) but `--embedding-bits 1` (the table's
ladder 1, 2, 4 bits: a byte per 8 values, its codebooks trained against the PyTorch model;
see edgebert/quantize/codebooks.py), into RUN/int8-embed1/TARGET. Both artifacts' dev and
test metric, size, the bits kept and what tuning measured go to embed1.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = Path(os.environ.get("EDGEBERT_BENCH_RESULTS", HERE / "results"))


def summary(art: Path) -> dict:
    m = json.loads((art / "metrics.json").read_text())
    low = m.get("embedding_lowbit") or {}
    return {"artifact": str(art), "size_mb": round(m["size_mb"], 3),
            "dev": m["dev"][m["metric"]], "test": m["test"][m["metric"]],
            "fp32_dev": m["fp32"]["dev"][m["metric"]], "fp32_test": m["fp32"]["test"][m["metric"]],
            "table_bits": low.get("bits") if low.get("kept") else 8,
            "tries": [{k: t.get(k) for k in ("bits", "mb_after", "dev_drop", "kept",
                                              "codebook_tuning")} for t in low.get("tries", [])]}


def main() -> None:
    from edgebert.cpu import cpu_flags

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--target", default="x86-avx2")
    args = ap.parse_args()
    out = RESULTS / "embed1.json"
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    for run in args.runs:
        before = run / "int8" / args.target
        cfg = json.loads((before / "stage.json").read_text())["config"]
        after = run / "int8-embed1" / args.target
        cmd = [sys.executable, "-m", "edgebert.cli", "quantize", "--model", cfg["model"],
               "--target", cfg["target"], "--mode", cfg["mode"], "--max-drop",
               str(cfg["max_drop"]), "--embedding-bits", "1", "--out", str(after)]
        print("+", " ".join(cmd), flush=True)
        started = time.perf_counter()
        subprocess.run(cmd, check=True)
        results["runs"][run.name] = {
            "command": " ".join(cmd[1:]), "seconds": round(time.perf_counter() - started, 1),
            "machine": cpu_flags(), "run's own": summary(before), "1-bit ladder": summary(after)}
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each run: nothing lost
        print(json.dumps(results["runs"][run.name], indent=1), flush=True)


if __name__ == "__main__":
    main()
