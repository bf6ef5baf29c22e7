"""The CI gate's own measurement: baseline and candidate benched interleaved in one run.

Two models benched in two separate runs meet different noise (another job on the runner,
a clock that drifted between the runs), and the gate cannot tell that from a slowdown;
interleaved in one run (A B, B A, ... each turn a fresh interpreter) they share it. This
is how `edgebert check` was calibrated (benchmarks/gate_calibration.py), so
`edgebert check --baseline-model A --candidate-model B` measures the same way: its turns
are not forked from a server as `edgebert bench`'s later rounds are.
"""

from __future__ import annotations

ROUNDS, RUNS, WARMUP = 8, 20, 5
"""Processes per model, timed runs and warm-up runs per process. 8 a side: the gate's
one-sided Mann-Whitney test over per-process summaries cannot reach p < 0.01 with 4 a side
(its smallest p is 1/70)."""


def bench_pair(baseline: str, candidate: str, seq: int = 128, threads: int = 2,
               rounds: int = ROUNDS, runs: int = RUNS, warmup: int = WARMUP,
               texts: str | None = None, log=print) -> tuple[dict, dict]:
    """Bench results of the two models from one interleaved run, each under the artifact
    name "model" so `compare` pairs them (the same path twice is an A/A trial)."""
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig

    cfg = BenchConfig(seq=[seq], threads=threads, warmup=warmup, runs=runs, rounds=rounds)
    data = bench([baseline, candidate], cfg, log=log, texts=texts, fork=False)
    base, cand = data["results"]
    return as_model(data, base), as_model(data, cand)


def as_model(data: dict, result: dict) -> dict:
    """A bench result holding only `result`, under the artifact name "model": two such
    results, of two models, pair up in `compare`."""
    return data | {"results": [result | {"artifact": "model"}]}
