"""Calibrate `edgebert check` on this machine: false alarms with the two models benched
interleaved in one run and in two separate runs, detection, smallest slowdown.

    python benchmarks/gate_calibration.py [--trials 20] [--neighbour first|second] [--smallest]

Its rows go to the store, suite gate.

Models: BERT-shaped ONNX encoders (hidden 256, 4 heads, FFN 1024, random
weights) that differ only in depth, so "one more layer" is a real slowdown of
known size. Each trial gates baseline and candidate with the same code as `edgebert check`:
- A/A interleaved: the same model against itself, benched in one run
  (`edgebert check --baseline-model A --candidate-model A`), --max-slowdown 5 %.
- A/A separate: the same, benched in two runs one after the other (`edgebert bench` twice,
  then `edgebert check --baseline a.json --candidate b.json`).
- with --neighbour first|second, instead: both A/A cases with another job busy on one core
  for that half of each trial (in separate runs: the baseline's or the candidate's run), as
  on a shared runner.
- A/B: 10 layers against 11 (about 10 % slower), interleaved, --max-slowdown 5 %.
- with --smallest, 20 against 21 layers (about 5 %), --max-slowdown 0 (any confident
  slowdown); the A/B trials give the 10 % point.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import record, script_command

SUITE = "gate"
RELIABLE = 0.95


def model(layers: int, root: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from edgebert.onnx_export import export_onnx

    out = root / f"bert{layers}"
    if (out / "model.onnx").exists():
        return out
    out.mkdir(parents=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=2000, hidden_size=256, num_attention_heads=4,
                     intermediate_size=1024, num_hidden_layers=layers)
    export_onnx(BertForSequenceClassification(cfg).eval(), "classification", out / "model.onnx")
    cfg.save_pretrained(out)  # the bench worker reads vocab_size from it
    return out


def neighbour(seconds: float, after: float = 0.0) -> subprocess.Popen:
    """Another job on the runner: after `after` seconds, one busy thread for `seconds`."""
    return subprocess.Popen([sys.executable, "-c", f"import time\ntime.sleep({after})\n"
                             f"end = time.time() + {seconds}\nwhile time.time() < end: pass"])


def trial(base: Path, cand: Path, threshold: float, interleaved: bool = True,
          busy: float = 0.0, after: float = 0.0) -> dict:
    """One gate decision. `busy`: seconds, from `after` seconds into the trial, during which
    another job runs beside it (half a trial: the baseline's or the candidate's run, when
    benched separately)."""
    from edgebert.bench.compare import compare, per_process
    from edgebert.bench.gate import ROUNDS, RUNS, WARMUP, as_model, bench_pair
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig

    quiet = {"log": lambda *_: None}
    other = neighbour(busy, after) if busy else None
    if interleaved:
        a, b = bench_pair(str(base), str(cand), **quiet)
    else:
        a, b = (bench([str(m)], BenchConfig(warmup=WARMUP, runs=RUNS, rounds=ROUNDS),
                      fork=False, **quiet) for m in (base, cand))  # as the gate benches
        a, b = (as_model(d, d["results"][0]) for d in (a, b))
    if other:
        other.wait()
    (v,), _ = compare(a, b, threshold, 100.0)
    # per-process summaries kept, so another statistic can be tried on the same trials
    return {"ratio": v.ratio, "low": v.low, "high": v.high, "p": v.p_slower,
            "fired": v.slowdown, "base_ms": per_process(a["results"][0]["rounds_ms"]).round(4)
            .tolist(), "cand_ms": per_process(b["results"][0]["rounds_ms"]).round(4).tolist()}


WHAT: dict[str, str] = {}
"""Per case, what it measures (the rows' notes)."""


def summary(trials: list[dict], case: str, what: str) -> dict:
    WHAT[case] = what
    ratios = sorted(t["ratio"] for t in trials)
    return {"fired": sum(t["fired"] for t in trials), "trials": len(trials),
            "median_ratio": ratios[len(ratios) // 2], "max_ratio": ratios[-1],
            "widest_interval": max(t["high"] - t["low"] for t in trials)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per case")
    parser.add_argument("--neighbour", choices=("first", "second"),
                        help="instead: the A/A trials with another job busy on the runner "
                             "for the first or the second half of each trial")
    parser.add_argument("--smallest", action="store_true",
                        help="also 20 against 21 layers (about 5 %%), half the trials")
    args = parser.parse_args(argv)
    from edgebert.bench.gate import ROUNDS, RUNS

    started = time.perf_counter()
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        m10 = model(10, root)
        started_trial = time.perf_counter()
        trial(m10, m10, 0.05)  # how long one trial takes: the neighbour's half
        half = (time.perf_counter() - started_trial) / 2
        when = {"first": 0.0, "second": half}
        for after in (when[args.neighbour],) if args.neighbour else (None,):
            for interleaved in (True, False):
                name = ("aa-interleaved" if interleaved else "aa-separate") + \
                    (f"-neighbour-{args.neighbour}-half" if args.neighbour else "")
                ts = [trial(m10, m10, 0.05, interleaved, half if args.neighbour else 0.0,
                            after or 0.0) for _ in range(args.trials)]
                how = "one interleaved run" if interleaved else "two separate runs"
                during = (f", another job busy on one core for the {args.neighbour} half of "
                          f"the trial ({half:.0f} s)") if args.neighbour else ""
                cases[name] = summary(ts, name, "false alarms: the same model against itself, "
                                                f"{how}, --max-slowdown 5%{during}")
                print(name, cases[name], flush=True)
        if not args.neighbour:
            ts = [trial(m10, model(11, root), 0.05) for _ in range(args.trials)]
            case = "ab-10-vs-11-layers"
            cases[case] = summary(ts, case, "detections: 11 layers against 10 (a real "
                                            "slowdown), interleaved, --max-slowdown 5%")
            print(case, cases[case], flush=True)
        if args.smallest:
            ts = [trial(model(20, root), model(21, root), 0.0)
                  for _ in range(max(1, args.trials // 2))]
            case = "ab-20-vs-21-layers"
            cases[case] = summary(ts, case, "detections: 21 layers against 20, interleaved, "
                                            "--max-slowdown 0")
    for name, case in cases.items():  # "reliably": caught in at least 19 of 20 trials
        if name.startswith("ab-"):
            case["reliable"] = case["fired"] >= RELIABLE * case["trials"]
    notes = {"gate": "each process summarised by its lower quartile; Hodges-Lehmann ratio over "
                     "those with its rank-based (Mann-Whitney) 95% interval; fires when the "
                     "interval's low end > 1 + max_slowdown and a one-sided Mann-Whitney test "
                     "gives p < 0.01",
             "cases": WHAT, "rounds": ROUNDS, "runs": RUNS,
             "seconds": round(time.perf_counter() - started, 1)}
    record(SUITE, cases, threads=2, notes=notes, command=script_command(__file__, argv))


if __name__ == "__main__":
    main()
