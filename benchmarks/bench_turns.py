"""Wall time of a chain's latency step with each turn's process forked from a server per
format (the default on Linux) against a fresh interpreter every turn, and the medians each
way: the same bench, alternated (forked, fresh, forked, fresh ...).

    python benchmarks/bench_turns.py RUN [--pairs 2]

RUN: a finished `edgebert compress` run (README command 1's: runs/default). Its artifacts
are the ones its bench/latency.json timed, at the settings written there: padded inputs,
then the task's test texts one at a time (RUN/bench/test_texts.txt), in one process a turn.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import record, script_command

SUITE = "bench_turns"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--pairs", type=int, default=2, help="benches each way, alternated")
    args = parser.parse_args()

    from edgebert.bench.run import bench, load, task_workloads
    from edgebert.config import BenchConfig

    chain = load(args.run / "bench" / "latency.json")
    root = args.run.resolve().parents[1]  # the paths are written as compress was run
    paths = list(dict.fromkeys(r["path"] for r in chain["results"]))
    paths = [p if Path(p).is_absolute() else str(root / p) for p in paths]
    s = chain["settings"]
    cfg = BenchConfig(batch=[1], seq=[128], threads=s["threads"], warmup=s["warmup"],
                      runs=s["runs"], rounds=s["rounds"])
    texts = args.run / "bench" / "test_texts.txt"
    count = sum(1 for line in texts.read_text().splitlines() if line.strip())
    workloads = task_workloads(cfg, texts, count)
    seconds, p50 = {True: [], False: []}, {True: {}, False: {}}
    for pair in range(args.pairs):
        for fork in (True, False):
            start = time.perf_counter()
            data = bench(paths, cfg, log=lambda *_: None, workloads=workloads, fork=fork)
            seconds[fork].append(time.perf_counter() - start)
            for r in data["results"]:
                p50[fork].setdefault((r["artifact"], str(r["seq"])), []).append(r["p50_ms"])
            print(f"pair {pair + 1}: {'forked' if fork else 'fresh '} {seconds[fork][-1]:.0f} s",
                  flush=True)
    ratios = {k: statistics.median(p50[True][k]) / statistics.median(p50[False][k])
              for k in p50[True]}
    for (name, seq), ratio in ratios.items():
        print(f"{name:28} {seq:6} forked / fresh p50 {ratio:.3f}")
    forked, fresh = statistics.median(seconds[True]), statistics.median(seconds[False])
    print(f"{len(paths)} artifacts, {cfg.rounds} rounds: {forked:.0f} s forked, {fresh:.0f} s "
          f"fresh ({fresh / forked:.2f}x)")
    record(SUITE, {"latency step": {
        "seconds_forked": round(forked, 1), "seconds_fresh": round(fresh, 1),
        "speedup": fresh / forked, "artifacts": len(paths), "rounds": cfg.rounds,
        "p50_ratio_median": statistics.median(ratios.values()),
        "p50_ratio_min": min(ratios.values()), "p50_ratio_max": max(ratios.values())}},
        command=script_command(__file__), threads=cfg.threads,
        notes={"pairs": args.pairs, "texts": count})


if __name__ == "__main__":
    main()
