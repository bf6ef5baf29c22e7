"""The 1-bit word table with tuned codebooks against a run's own INT8 model: size and accuracy.

    python benchmarks/embed1.py RUN [RUN ...] [--target x86-avx2]   # -> store rows, suite embed1

For each `compress` run directory, the INT8 step of int8/TARGET is made again from the same
model with the same options (its stage.json's config) but `--embedding-bits 1` (the table's
ladder 1, 2, 4 bits: a byte per 8 values, its codebooks trained against the PyTorch model;
see edgebert/stages/quantize/codebooks.py), into RUN/int8-embed1/TARGET. Both artifacts' dev and
test metric, size, the bits kept and what tuning measured are a row, its case the run's
name, appended as each run ends. TARGET defaults to this CPU's x86 target.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from common import record, run

SUITE = "embed1"


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
    from edgebert.targets import native_target

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--target", default=None, help="default: this CPU's x86 target")
    args = ap.parse_args()
    target = args.target or native_target()
    for out in args.runs:
        before = out / "int8" / target
        cfg = json.loads((before / "stage.json").read_text())["config"]
        after = out / "int8-embed1" / target
        cmd = [sys.executable, "-m", "edgebert.cli", "quantize", "--model", cfg["model"],
               "--target", cfg["target"], "--mode", cfg["mode"], "--max-drop",
               str(cfg["max_drop"]), "--embedding-bits", "1", "--out", str(after)]
        case = {"seconds": round(run(cmd), 1), "run's own": summary(before),
                "1-bit ladder": summary(after)}
        print(json.dumps(case, indent=1), flush=True)
        record(SUITE, {out.name: case}, command=shlex.join(["edgebert", *cmd[3:]]))


if __name__ == "__main__":
    main()
