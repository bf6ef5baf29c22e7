"""Calibrate `edgebert check` on this machine: false alarms, detection, smallest slowdown.

    python benchmarks/gate_calibration.py   # -> benchmarks/results/gate_calibration.json

Models: BERT-shaped ONNX encoders (hidden 256, 4 heads, FFN 1024, random
weights) that differ only in depth, so "one more layer" is a real slowdown of
known size. Each trial benches baseline and candidate interleaved in one run
(as `edgebert bench` does: each turn its own process) and gates them with the
same code as `edgebert check`.
- A/A: the same model against itself, 20 trials, --max-slowdown 5 %.
- A/B: 10 layers against 11 (about 10 % slower), 20 trials, --max-slowdown 5 %.
- smallest detectable: 20 against 21 layers (about 5 %), 10 trials, --max-slowdown 0
  (any confident slowdown); the A/B trials above give the 10 % point.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# 8 processes a side: the test compares per-process medians, and with 4 a side a
# one-sided Mann-Whitney cannot reach p < 0.01 at all (its smallest p is 1/70)
ROUNDS, RUNS, WARMUP = 8, 20, 5
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


def trial(base: Path, cand: Path, threshold: float) -> dict:
    from edgebert.bench.compare import compare, per_process
    from edgebert.bench.run import bench

    data = bench([str(base), str(cand)], [1], [128], threads=2, warmup=WARMUP, runs=RUNS,
                 rounds=ROUNDS, log=lambda *_: None)
    a, b = data["results"]
    split = [data | {"results": [r | {"artifact": "model"}]} for r in (a, b)]
    (v,), _ = compare(split[0], split[1], threshold, 100.0)
    # per-process summaries kept, so another statistic can be tried on the same trials
    return {"ratio": v.ratio, "low": v.low, "high": v.high, "p": v.p_slower,
            "fired": v.slowdown, "base_ms": per_process(a["rounds_ms"]).round(4).tolist(),
            "cand_ms": per_process(b["rounds_ms"]).round(4).tolist()}


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        m10 = model(10, root)
        aa = [trial(m10, m10, 0.05) for _ in range(20)]
        print("A/A false alarms:", sum(t["fired"] for t in aa), flush=True)
        ab = [trial(m10, model(11, root), 0.05) for _ in range(20)]
        print("A/B detected:", sum(t["fired"] for t in ab), flush=True)
        sizes = {}
        for n in (20,):
            ts = [trial(model(n, root), model(n + 1, root), 0.0) for _ in range(10)]
            sizes[n] = {"layers": f"{n} vs {n + 1}",
                        "median_slowdown": sorted(t["ratio"] for t in ts)[5] - 1,
                        "detected": sum(t["fired"] for t in ts), "trials": len(ts)}
            print(sizes[n], flush=True)
    sizes[10] = {"layers": "10 vs 11", "median_slowdown": sorted(t["ratio"] for t in ab)[10] - 1,
                 "detected": sum(t["fired"] for t in ab), "trials": len(ab),
                 "note": "the A/B trials, gated at --max-slowdown 5 %"}
    # "reliably": caught in at least 19 of 20 trials (95 %), the bar the A/B trials are held to
    reliable = [s["median_slowdown"] for s in sizes.values()
                if s["detected"] >= RELIABLE * s["trials"]]
    from edgebert.bench.machine import fingerprint

    result = {
        "false_alarms": sum(t["fired"] for t in aa), "aa_trials": len(aa),
        "aa_max_ratio": max(t["ratio"] for t in aa),
        "detected": sum(t["fired"] for t in ab), "ab_trials": len(ab),
        "ab_median_slowdown": sorted(t["ratio"] for t in ab)[10] - 1,
        "min_detectable": min(reliable) if reliable else None,
        "min_detectable_note": "smallest tested slowdown (median over its trials) that the gate "
                               "flagged in at least 95 % of its trials",
        "by_size": list(sizes.values()),
        "gate": {"statistic": "each process summarised by its lower quartile; Hodges-Lehmann "
                              "ratio over those (median of pairwise candidate/baseline "
                              "ratios) with its rank-based (Mann-Whitney) 95% interval; "
                              "fires when the interval's low end > "
                              "1 + max_slowdown and a one-sided Mann-Whitney test on the "
                              "per-process summaries gives p < 0.01",
                 "samples_per_side": ROUNDS * RUNS, "rounds": ROUNDS, "runs": RUNS},
        "trials": {"aa": aa, "ab": ab},
        "machine": fingerprint(2), "seconds": round(time.perf_counter() - started, 1),
        "command": "python benchmarks/gate_calibration.py",
    }
    (HERE / "results" / "gate_calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "trials"}, indent=2))


if __name__ == "__main__":
    main()
