"""4-bit and 2-bit word embeddings on finished INT8 artifacts: size, accuracy and latency
against 8 bits.

    python benchmarks/embed4.py ARTIFACT [ARTIFACT ...] [--blocks 32,64] [--bench]
        -> store rows, suite embed4, case 4-bit/ARTIFACT
    python benchmarks/embed4.py ARTIFACT [ARTIFACT ...] --blocks 64 --pq
        -> also the 2-bit (product-quantized) table, rows weighted as the quantize stage
           does; case 2-bit blocks64 pq/ARTIFACT

Each ARTIFACT is an `int8/<target>` directory of a `compress` run. For every block size, the
artifact's model.onnx is rewritten (`edgebert.stages.quantize.embeddings`) into a copy of the
artifact, and both are scored with `edgebert evaluate` on dev and test; `--bench` then
times the original and the block-64 copy in one interleaved `edgebert bench` run (batch
1, sequence 128, 2 threads) per artifact. What `compress` keeps is decided by its guard on
dev; this script shows what the guard sees and what test says.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import record, script_command

SUITE = "embed4"


def cli(*args) -> str:
    res = subprocess.run([sys.executable, "-m", "edgebert.cli", *map(str, args)],
                         capture_output=True, text=True, check=True)
    return res.stdout


def scores(artifact: Path, metric: str) -> dict:
    return {split: json.loads(cli("evaluate", artifact, "--split", split, "--json"))[metric]
            for split in ("dev", "test")}


def case_name(artifact: Path, pq: bool) -> str:
    """The case of an artifact: the table, then the run's name and the artifact's place in
    it (4-bit/rotten-tomatoes/int8/x86-avx2)."""
    where = "/".join(artifact.resolve().parts[-3:])
    return f"{'2-bit blocks64 pq' if pq else '4-bit'}/{where}"


def main() -> None:
    from edgebert.stages.quantize.embeddings.rewrite import word_embeddings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("artifacts", nargs="+", type=Path)
    ap.add_argument("--blocks", default="32,64")
    ap.add_argument("--bench", action="store_true", help="time 8 bits against block 64")
    ap.add_argument("--pq", action="store_true", help="the 2-bit table too")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for art in args.artifacts:
            base = {"notes": {"artifact": str(art)},
                    "size_mb": (art / "model.onnx").stat().st_size / 1e6,
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
                from edgebert.stages.quantize.embeddings.ladder import piece_weights

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
            rows[case_name(art, args.pq)] = row
    print(json.dumps(rows, indent=1))
    record(SUITE, rows, threads=2 if args.bench else None,
           command=script_command(__file__))


if __name__ == "__main__":
    main()
