"""Interleaved latency: A B C, B C A, C A B ..., each turn a fresh process, so the
artifacts share the machine's noise, never share a thread pool, and none always
runs right after the same neighbour."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np

from edgebert.errors import UserError


def interleaved(paths: dict[str, str], rounds: int = 8, runs: int = 30, warmup: int = 10,
                batch: int = 1, seq: int = 128, threads: int = 2, log=print,
                keep_samples: bool = False, texts: str | None = None) -> dict[str, dict]:
    """Latency summary per name: p50/p90/p99/mean/stdev in ms, over rounds * runs samples.
    `texts`: a JSON file of strings, timed one at a time instead of batch x seq."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    groups: dict[str, list[list[float]]] = {name: [] for name in paths}  # one list per process
    rss: dict[str, float] = {}
    names = list(paths)
    for r in range(rounds):
        # rotate the order each round (A B C, B C A, C A B): a process that always follows
        # a heavy one (caches, memory, clocks) would otherwise carry a fixed bias
        for name in names[r % len(names):] + names[:r % len(names)]:
            path = paths[name]
            cmd = [sys.executable, "-m", "edgebert.bench.worker", str(path), "--batch",
                   str(batch), "--seq", str(seq), "--threads", str(threads), "--warmup",
                   str(warmup), "--runs", str(runs)] + (["--texts", texts] if texts else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
                raise UserError(f"{path}: the timing process failed ({tail[0][:300]})")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            samples[name] += res["samples_ms"]
            groups[name].append(res["samples_ms"])
            rss[name] = max(rss.get(name, 0.0), res["peak_rss_mb"])
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {statistics.median(s):.2f} ms" for n, s in samples.items()))
    return {name: summary(s, batch) | {"peak_rss_mb": rss[name]}
            | ({"samples_ms": s, "rounds_ms": groups[name]} if keep_samples else {})
            for name, s in samples.items()}


def summary(samples: list[float], batch: int = 1) -> dict:
    """Percentiles (linear interpolation, numpy's default), mean, spread, throughput.

    >>> summary([1.0, 2.0, 3.0, 4.0])["p50_ms"]
    2.5
    """
    a = np.asarray(samples)
    p50 = float(np.percentile(a, 50))
    return {"p50_ms": p50, "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "stdev_ms": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "iqr_ms": float(np.percentile(a, 75) - np.percentile(a, 25)),
            "throughput_seq_s": 1000.0 * batch / p50 if p50 > 0 else 0.0, "n": len(a)}
