"""4-bit and 2-bit word embeddings on finished INT8 artifacts: size, accuracy and latency
against 8 bits.

    python benchmarks/embed4.py ARTIFACT [ARTIFACT ...] [--blocks 32,64] [--bench]
        -> benchmarks/results/embed4.json
    python benchmarks/embed4.py ARTIFACT [ARTIFACT ...] --blocks 64 --pq --out embed2.json
        -> also the 2-bit (product-quantized) table, rows weighted as the quantize stage does

Each ARTIFACT is an `int8/<target>` directory of a `compress` run. For every block size, the
artifact's model.onnx is rewritten (`edgebert.quantize.embeddings`) into a copy of the
artifact, and both are scored with `edgebert evaluate` on dev and test; `--bench` then
times the original and the block-64 copy in one interleaved `edgebert bench` run (batch
1, sequence 128, 2 threads) per artifact. What `compress` keeps is decided by its guard on
dev; this script shows what the guard sees and what test says.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = Path(os.environ.get("EDGEBERT_BENCH_RESULTS", HERE / "results"))


def cli(*args) -> str:
    res = subprocess.run([sys.executable, "-m", "edgebert.cli", *map(str, args)],
                         capture_output=True, text=True, check=True)
    return res.stdout


def scores(artifact: Path, metric: str) -> dict:
    return {split: json.loads(cli("evaluate", artifact, "--split", split, "--json"))[metric]
            for split in ("dev", "test")}


def main() -> None:
    from edgebert.cpu import cpu_flags
    from edgebert.quantize.embeddings.rewrite import word_embeddings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("artifacts", nargs="+", type=Path)
    ap.add_argument("--blocks", default="32,64")
    ap.add_argument("--bench", action="store_true", help="time 8 bits against block 64")
    ap.add_argument("--pq", action="store_true", help="the 2-bit table too")
    ap.add_argument("--out", default="embed4.json", help="file name under results/")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for art in args.artifacts:
            base = {"artifact": str(art), "size_mb": (art / "model.onnx").stat().st_size / 1e6,
                    "metric": json.loads((art / "metrics.json").read_text())["metric"]}
            row = base | {"8bit": scores(art, base["metric"]), "4bit": {}}
            for block in map(int, args.blocks.split(",")):
                copy = Path(tmp) / f"{art.parent.parent.name}-{art.name}-{block}"
                shutil.copytree(art, copy)
                made = word_embeddings(art / "model.onnx", copy / "model.onnx", 4, block)
                row["4bit"][block] = made.record() | scores(copy, base["metric"]) | {
                    "size_mb": (copy / "model.onnx").stat().st_size / 1e6}
                print(art, block, row["4bit"][block], flush=True)
            if args.pq:
                from edgebert.artifacts_io import open_artifact
                from edgebert.quantize.embeddings.ladder import piece_weights

                copy = Path(tmp) / f"{art.parent.parent.name}-{art.name}-pq"
                shutil.copytree(art, copy)
                made = word_embeddings(art / "model.onnx", copy / "model.onnx", 2,
                                       weights=piece_weights(open_artifact(str(art))))
                row["2bit"] = made.record() | scores(copy, base["metric"]) | {
                    "size_mb": (copy / "model.onnx").stat().st_size / 1e6}
                print(art, "2-bit", row["2bit"], flush=True)
            if args.bench:
                out = Path(tmp) / "bench.json"
                four = Path(tmp) / f"{art.parent.parent.name}-{art.name}-64"
                cli("bench", art, four, "--out", out)
                p50 = {r["path"]: r["p50_ms"] for r in json.loads(out.read_text())["results"]}
                row["p50_ms"] = {"8bit": p50[str(art)], "4bit-64": p50[str(four)]}
            rows.append(row)
    result = {"machine": cpu_flags(), "command": "python benchmarks/embed4.py "
              + " ".join(sys.argv[1:]), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
