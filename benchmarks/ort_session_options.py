"""ONNX Runtime's thread-pool settings, timed on a finished run's ONNX artifacts.

    python benchmarks/ort_session_options.py --run RUN [--rounds 12]
    # -> store rows, suite ort_session_options (a case per setting)

At batch 1 a small INT8 model is some 45 kernels of 10-40 us, each a dispatch to the
intra-op thread pool (the peers suite's profile of it, in the store), so how the pool splits a
loop matters as much as the kernels. Each setting below runs RUN's recommended x86 INT8
model and its FP32 ORT export in a process of its own (DESIGN.md: never two spinning
pools in one process), the processes alternated with the order rotated every round:

- `ort_default`: ONNX Runtime's defaults, 2 threads (what `edgebert.formats.session`,
  and so the runtime, bench and evaluate, run with);
- `ort_default_again`: the same, timed as if it were another setting: the A/A pair says
  how far two identical settings read apart in this run (the noise);
- `dynamic_block_base_N`: `session.dynamic_block_base` = N (a parallel loop is cut into
  shrinking blocks that idle threads take, instead of one fixed split per thread);
- `no_spinning`: `session.intra_op.allow_spinning` = 0;
- `one_thread`: one intra-op thread (no pool).

Batch 1, sequence 128: `edgebert bench`'s worker (its inputs, its timing loop).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import record, script_command

SUITE = "ort_session_options"

SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "ort_default": (2, {}),
    "ort_default_again": (2, {}),
    "dynamic_block_base_2": (2, {"session.dynamic_block_base": "2"}),
    "dynamic_block_base_4": (2, {"session.dynamic_block_base": "4"}),
    "dynamic_block_base_8": (2, {"session.dynamic_block_base": "8"}),
    "no_spinning": (2, {"session.intra_op.allow_spinning": "0"}),
    "one_thread": (1, {}),
}
"""name: (intra-op threads, session config entries)."""


def worker(path: str, setting: str, warmup: int, runs: int) -> None:
    """Time one model under one setting in this process, as `edgebert bench`'s worker
    does (its inputs, its loop); print the samples (ms) as JSON."""
    from edgebert.bench.worker import time_model

    threads, config = SETTINGS[setting]
    res = time_model(path, batch=1, seq=128, threads=threads, warmup=warmup, runs=runs,
                    config=config)
    print(json.dumps(res["samples_ms"]))


def main() -> None:
    from edgebert.bench.latency import summary

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "SETTING"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker[0], a.worker[1], a.warmup, a.runs)
    report = json.loads((a.run / "report.json").read_text())
    models = {"int8": a.run / report["recommended"]["x86"] / "model.onnx",
              "fp32_ort": a.run / "export" / "ort" / "model.ort"}
    jobs = [(m, s) for m in models for s in SETTINGS]
    samples: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
    for r in range(a.rounds):
        for m, s in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:  # rotate the order
            out = subprocess.run([sys.executable, __file__, "--worker", str(models[m]), s,
                                  "--runs", str(a.runs), "--warmup", str(a.warmup)],
                                 capture_output=True, text=True, check=True)
            samples[(m, s)] += json.loads(out.stdout.strip().splitlines()[-1])
        print(f"round {r + 1}/{a.rounds}", flush=True)
    latency = {m: {s: {k: v for k, v in summary(samples[(m, s)]).items()
                       if k in ("p50_ms", "p90_ms", "p99_ms")} for s in SETTINGS}
               for m in models}
    for m in models:
        base = latency[m]["ort_default"]["p50_ms"]
        for s, v in latency[m].items():
            v["p50_vs_ort_default"] = base / v["p50_ms"]
            print(f"{m:9s} {s:22s} p50 {v['p50_ms']:.3f}  p90 {v['p90_ms']:.3f} ms  "
                  f"{v['p50_vs_ort_default']:.2f}x")
    cases = {s: {"settings": {"threads": t, "config": c},
                 "latency": {m: latency[m][s] for m in models}}
             for s, (t, c) in SETTINGS.items()}
    record(SUITE, cases, command=script_command(__file__), notes={
        "run": str(a.run), "models": {k: str(v) for k, v in models.items()},
        "setting": f"batch 1, sequence 128; {a.rounds} rounds, each (model, setting) a fresh "
                   f"process per round, {a.warmup} warm-up + {a.runs} timed runs"})


if __name__ == "__main__":
    main()
