"""Interleaved latency: A B C A B C ..., each turn a fresh process, so the
artifacts share the machine's noise and never share a thread pool."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np


def interleaved(paths: dict[str, str], rounds: int = 8, runs: int = 30, warmup: int = 10,
                batch: int = 1, seq: int = 128, threads: int = 2, log=print) -> dict[str, dict]:
    """Latency summary per name: p50/p90/p99/mean/stdev in ms, over rounds * runs samples."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    rss: dict[str, float] = {}
    for r in range(rounds):
        for name, path in paths.items():
            cmd = [sys.executable, "-m", "edgebert.bench.worker", str(path), "--batch",
                   str(batch), "--seq", str(seq), "--threads", str(threads), "--warmup",
                   str(warmup), "--runs", str(runs)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            samples[name] += res["samples_ms"]
            rss[name] = max(rss.get(name, 0.0), res["peak_rss_mb"])
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {statistics.median(s):.2f} ms" for n, s in samples.items()))
    return {name: summary(s) | {"peak_rss_mb": rss[name]} for name, s in samples.items()}


def summary(samples: list[float]) -> dict:
    """>>> summary([1.0, 2.0, 3.0, 4.0])["p50_ms"]
    2.5
    """
    a = np.asarray(samples)
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "stdev_ms": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a)}
