"""The one-file model (tokenizer inside) against Python tokenization + the same model.

    python benchmarks/text_in_graph.py [ARTIFACT | --run RUN] [--rounds 6] [--texts 200]
        -> a store row, suite text_in_graph, case "one-file model"

ARTIFACT defaults to the recommended x86 artifact of RUN (default runs/default, README
command 1). It is exported with `edgebert export --with-tokenizer` (ONNX and ORT format),
whose check covers the whole dev split (token ids and predictions); both it and
the plain model go into bundles, and `edgebert.runtime` times raw string -> label
on the first --texts dev texts, batch 1, 2 threads, one process per turn, the two
alternated (A B, B A, ...) in one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
from common import record, script_command

SUITE = "text_in_graph"
RUNS = common.RUNS / "text_in_graph"


def edgebert(*args) -> None:
    common.run([sys.executable, "-m", "edgebert.cli", *args])


def dev_texts(artifact: Path, n: int) -> list[str]:
    from edgebert.artifacts_io import open_artifact

    return [ex.text for ex in open_artifact(artifact).task.splits["dev"]][:n]


def worker(bundle: str, texts_file: str) -> None:
    """One timing process: load, warm up, then each text alone, in ms."""
    from edgebert.runtime import load

    texts = json.loads(Path(texts_file).read_text())
    model = load(bundle, threads=2, batch_size=1)
    for t in texts[:10]:
        model.predict([t])
    samples, labels = [], []
    for t in texts:
        start = time.perf_counter()
        labels.append(model.predict([t])[0]["label"])
        samples.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"samples_ms": samples, "labels": labels}))


def timed(bundles: dict[str, Path], texts_file: Path, rounds: int) -> dict:
    samples = {name: [] for name in bundles}
    labels = {}
    names = list(bundles)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            out = subprocess.run([sys.executable, __file__, "--worker", str(bundles[name]),
                                  str(texts_file)], capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            samples[name] += res["samples_ms"]
            labels[name] = res["labels"]
        print(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{n} p50 {statistics.median(s):.3f} ms" for n, s in samples.items()), flush=True)
    return {"samples": samples, "labels": labels}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact", nargs="?")
    ap.add_argument("--run", type=Path, default=Path("runs/default"),
                    help="without ARTIFACT: this run's recommended x86 artifact")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--worker", nargs=2)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)
    artifact = Path(args.artifact) if args.artifact else None
    if artifact is None:
        report = json.loads((args.run / "report.json").read_text())
        artifact = args.run / report["recommended"]["x86"]
    # the exports and bundles below are reused only when made from this very model file
    model = artifact / "model.onnx"
    source = f"{model.resolve()} {model.stat().st_size} {model.stat().st_mtime_ns}"
    if (RUNS / "source.txt").exists() and (RUNS / "source.txt").read_text() != source:
        shutil.rmtree(RUNS)
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "source.txt").write_text(source)
    onnx_text, ort_text = RUNS / "onnx-text", RUNS / "ort-text"
    for fmt, out in (("onnx", onnx_text), ("ort", ort_text)):
        if not (out / "stage.json").exists():
            edgebert("export", "--model", artifact, "--format", fmt, "--with-tokenizer",
                     "--out", out)
    bundles = {"one_file": RUNS / "bundle-one-file", "python_tokenizer": RUNS / "bundle-ids"}
    for src, dst in ((onnx_text, bundles["one_file"]), (artifact, bundles["python_tokenizer"])):
        if not dst.exists():
            edgebert("bundle", "--model", src, "--out", dst)
    texts_file = RUNS / "texts.json"
    texts_file.write_text(json.dumps(dev_texts(artifact, args.texts)))
    timing = timed(bundles, texts_file, args.rounds)
    p50 = {n: statistics.median(s) for n, s in timing["samples"].items()}
    metrics = {n: json.loads((d / "metrics.json").read_text())
               for n, d in (("onnx", onnx_text), ("ort", ort_text))}
    parity = metrics["onnx"]["text_parity"]
    tokenizer_mb = (Path(artifact) / "tokenizer.json").stat().st_size / 1e6
    result = {
        "dev_examples": parity["examples"],
        "token_id_mismatches": parity["token_id_mismatches"],
        "prediction_mismatches": parity["prediction_mismatches"],
        "max_abs_score_diff": parity["max_abs_score_diff"],
        "ort_format": {k: metrics["ort"]["text_parity"][k]
                       for k in ("token_id_mismatches", "prediction_mismatches")},
        "arm64_emulation": metrics["ort"]["text_parity"].get("arm64_emulation"),
        "size_mb": {"onnx_with_tokenizer": metrics["onnx"]["size_mb"],
                    "ort_with_tokenizer": metrics["ort"]["size_mb"],
                    "onnx_without_tokenizer": metrics["onnx"]["size_without_tokenizer_mb"],
                    "tokenizer_json": tokenizer_mb},
        "dev_accuracy_one_file": metrics["onnx"]["dev"]["accuracy"],
        "latency": {"p50_ms": p50,
                    "p90_ms": {n: sorted(s)[int(0.9 * len(s))]
                               for n, s in timing["samples"].items()},
                    "one_file_over_python": p50["one_file"] / p50["python_tokenizer"],
                    "same_labels": timing["labels"]["one_file"]
                    == timing["labels"]["python_tokenizer"]},
    }
    print(json.dumps(result, indent=2))
    record(SUITE, {"one-file model": result}, threads=2,
           command=script_command(__file__, [artifact]), notes={
               "artifact": str(artifact),
               "latency": "raw string -> label through edgebert.runtime, batch 1, 2 threads, "
                          f"first {args.texts} dev texts, {args.rounds} processes each, "
                          "alternated"})


if __name__ == "__main__":
    main()
