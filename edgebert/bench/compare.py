"""`edgebert check`: a latency / accuracy gate that uses the samples, not one number.

For each (artifact, batch, seq) in both results: the ratio candidate / baseline
with a 95 % interval, and a one-sided
Mann-Whitney U test that the candidate is slower. A slowdown fails the gate
only when the whole interval lies above 1 + max_slowdown and the test agrees
(p < alpha): a noisy run cannot fire it, a real slowdown past the threshold can.

Samples from one process are correlated (its memory placement, scheduling,
clocks): treating them as independent made the interval too narrow, and a first
calibration here gave 3 false alarms in 20 A/A trials at 5 %. So when a result
keeps its samples per process (`rounds_ms`, written by `edgebert bench`), each
process is summarised by its lower quartile (noise only adds time), and the
ratio is the Hodges-Lehmann estimate over those summaries with the Mann-Whitney
interval (rank-based, so one process caught in a burst of noise cannot widen it);
the test compares the same summaries. Use 8 or more rounds a side: with n
per-process summaries a side the smallest one-sided Mann-Whitney p is
1/C(2n, n), 1/70 for n = 4, so 4 rounds can never pass alpha 0.01. Calibrated
on this machine by benchmarks/gate_calibration.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgebert.bench.machine import same_machine


@dataclass
class Verdict:
    key: str
    ratio: float
    low: float
    high: float
    p_slower: float
    slowdown: bool
    accuracy_drop: float | None
    accuracy_fail: bool

    @property
    def failed(self) -> bool:
        return self.slowdown or self.accuracy_fail


def ratio_ci(base: np.ndarray, cand: np.ndarray, resamples: int = 2000, seed: int = 0):
    """Ratio of medians and its percentile-bootstrap 95 % interval (independent samples).

    >>> r, lo, hi = ratio_ci(np.full(50, 10.0), np.full(50, 11.0)); round(r, 3)
    1.1
    """
    rng = np.random.default_rng(seed)
    b = rng.choice(base, (resamples, base.size))
    c = rng.choice(cand, (resamples, cand.size))
    ratios = np.median(c, axis=1) / np.median(b, axis=1)
    return (float(np.median(cand) / np.median(base)), float(np.percentile(ratios, 2.5)),
            float(np.percentile(ratios, 97.5)))


PROCESS_QUANTILE = 25
"""Each process is summarised by its lower quartile: contention from other work on
the machine only ever adds time, and it hits some stretches of a process and not
others, so the lower quartile tracks the model's own speed where the median
wanders (benchmarks/gate_calibration.py: with per-process medians, 5 of 20
trials of a real 10 % slowdown had intervals as wide as 0.79-1.44)."""


def per_process(rounds: list[list[float]]) -> np.ndarray:
    return np.array([np.percentile(r, PROCESS_QUANTILE) for r in rounds])


def shift_ratio_ci(base: list[list[float]], cand: list[list[float]], level: float = 0.95):
    """Hodges-Lehmann ratio over processes, with its distribution-free interval.

    Each process is summarised by its lower quartile; the estimate is the median of all
    candidate/baseline ratios of those summaries (pairwise, in log space), and the
    interval is the Mann-Whitney one: the k-th smallest and largest pairwise ratio,
    k from the U statistic's normal approximation (k = 13 of 64 for 8 processes a side,
    the exact 95 % value). A process hit by a burst of noise moves a few of the pairs,
    not the interval's ends, where a bootstrap of the median over 8 processes swung
    wide (5 of 20 trials of a real 10 % slowdown had low ends of 0.86-0.95:
    docs/defaults.md, "Measuring").

    >>> r, lo, hi = shift_ratio_ci([[10.0]] * 8, [[11.0]] * 8); round(r, 3), round(lo, 3)
    (1.1, 1.1)
    """
    from statistics import NormalDist

    b, c = np.log(per_process(base)), np.log(per_process(cand))
    diffs = np.sort((c[:, None] - b[None, :]).ravel())
    m, n = b.size, c.size
    z = NormalDist().inv_cdf(0.5 + level / 2)
    k = int(np.floor(m * n / 2 - z * np.sqrt(m * n * (m + n + 1) / 12)))
    k = min(max(k, 0), diffs.size - 1)
    return (float(np.exp(np.median(diffs))), float(np.exp(diffs[k])),
            float(np.exp(diffs[diffs.size - 1 - k])))


def compare(baseline: dict, candidate: dict, max_slowdown: float, max_drop_vs_baseline: float,
            alpha: float = 0.01) -> tuple[list[Verdict], list[str]]:
    """Verdicts per shared (artifact, batch, seq), and warnings (machines that differ, turns
    not run in fresh interpreters as calibrated): a
    slowdown past `max_slowdown` (a fraction), or test accuracy more than
    `max_drop_vs_baseline` points under the baseline's."""
    from scipy.stats import mannwhitneyu

    warnings = []
    same, diffs = same_machine(baseline["machine"], candidate["machine"])
    if not same:
        warnings.append("MACHINES DIFFER, latency ratios compare different hardware: "
                        + "; ".join(diffs))
    turns = [d.get("settings", {}).get("turns", "fresh") for d in (baseline, candidate)]
    if turns != ["fresh", "fresh"]:
        warnings.append(f"turns baseline {turns[0]}, candidate {turns[1]}: the gate was "
                        f"calibrated on fresh interpreters (edgebert bench --fresh)")
    base = {(r["artifact"], r["batch"], r["seq"]): r for r in baseline["results"]}
    verdicts = []
    for r in candidate["results"]:
        key = (r["artifact"], r["batch"], r["seq"])
        if key not in base:
            warnings.append(f"{key[0]} (batch {key[1]}, seq {key[2]}): not in the baseline")
            continue
        bg, cg = base[key].get("rounds_ms"), r.get("rounds_ms")
        if bg and cg and len(bg) >= 3 and len(cg) >= 3:  # per-process units
            ratio, low, high = shift_ratio_ci(bg, cg)
            p = float(mannwhitneyu(per_process(cg), per_process(bg),
                                   alternative="greater").pvalue)
        else:
            b, c = np.asarray(base[key]["samples_ms"]), np.asarray(r["samples_ms"])
            ratio, low, high = ratio_ci(b, c)
            p = float(mannwhitneyu(c, b, alternative="greater").pvalue)
        drop, acc_fail = None, False
        ba, ca = base[key].get("accuracy"), r.get("accuracy")
        if ba and ca and ba.get("metric") == ca.get("metric"):
            drop = 100.0 * (ba["value"] - ca["value"])  # points
            acc_fail = drop > max_drop_vs_baseline
        verdicts.append(Verdict(f"{key[0]} b{key[1]} s{key[2]}", ratio, low, high, p,
                                low > 1 + max_slowdown and p < alpha, drop, acc_fail))
    return verdicts, warnings


def table(verdicts: list[Verdict], max_slowdown: float, markdown: bool = False) -> str:
    head = ["artifact", "ratio (cand/base)", "95% CI", "p(slower)", "accuracy drop", "verdict"]
    rows = [[v.key, f"{v.ratio:.3f}", f"[{v.low:.3f}, {v.high:.3f}]", f"{v.p_slower:.3g}",
             "-" if v.accuracy_drop is None else f"{v.accuracy_drop:+.2f}",
             ("FAIL: slower" if v.slowdown else "") + (" FAIL: accuracy" if v.accuracy_fail
                                                       else "") or "ok"] for v in verdicts]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\nSlowdown threshold {max_slowdown:.1%}.\n"
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [head] + rows)
