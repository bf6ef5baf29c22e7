"""The accuracy guard: keep an INT8 model within a budget of its FP32 parent by
leaving the nodes that lose most in FP32.

1. Quantize everything; if the dev metric drops by no more than the budget, done.
2. Otherwise rank the quantizable nodes by the damage each one does alone
   (quantize only that node; mean |delta logits| against FP32 on a dev sample).
3. Leave the worst 1, 2, 4, 8, ... in FP32 until the drop fits the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RANKING_EXAMPLES = 256
"""Dev examples a probe's damage is measured on, drawn once: the ranking needs only the
order of the damages, at a fifth of Rotten Tomatoes' dev split's cost per probe."""


@dataclass
class GuardResult:
    path: Path
    drop: float
    """Dev metric of FP32 minus INT8, in points."""
    excluded: list[str] = field(default_factory=list)
    sensitivity: dict[str, float] = field(default_factory=dict)
    tries: list[dict] = field(default_factory=list)
    within_budget: bool = True


def guard(quantize: Callable[[Path, list[str] | None, list[str] | None], Path],
          metric: Callable[[Path], float], damage: Callable[[Path], float], fp32_metric: float,
          candidates: list[str], budget: float, scratch: Path, log=print) -> GuardResult:
    """`quantize(dst, exclude, only)` writes an INT8 model; `metric(path)` is the dev
    metric in points; `damage(path)` is the output error of a model against FP32."""
    full = quantize(scratch / "int8_all.onnx", None, None)
    drop = fp32_metric - metric(full)
    tries = [{"excluded": 0, "drop": drop}]
    log(f"INT8 dev drop {drop:.2f} points (budget {budget:.2f})")
    if drop <= budget:
        return GuardResult(full, drop, tries=tries)
    sensitivity = {}
    for i, node in enumerate(candidates):
        sensitivity[node] = damage(quantize(scratch / "probe.onnx", None, [node]))
    ranked = sorted(candidates, key=lambda n: -sensitivity[n])
    log("most sensitive nodes: " + ", ".join(f"{n} {sensitivity[n]:.3g}" for n in ranked[:5]))
    k, best = 1, (full, drop, [])
    while k <= len(ranked):
        excluded = ranked[:k]
        path = quantize(scratch / f"int8_ex{k}.onnx", excluded, None)
        drop_k = fp32_metric - metric(path)
        tries.append({"excluded": k, "drop": drop_k})
        log(f"{k} nodes in FP32: dev drop {drop_k:.2f} points")
        if drop_k < best[1]:
            best = (path, drop_k, excluded)
        if drop_k <= budget:
            return GuardResult(path, drop_k, excluded, sensitivity, tries)
        k = k * 2 if k * 2 <= len(ranked) or k == len(ranked) else len(ranked)
        if excluded == ranked:
            break
    return GuardResult(best[0], best[1], best[2], sensitivity, tries, within_budget=False)


def sampled_damage(opened, dev, reference: list, forward_of: Callable) -> Callable[[Path], float]:
    """`damage` for `guard`: the mean |delta output| of the model at a path against
    `reference`, the parent's outputs on the whole of `dev`, over RANKING_EXAMPLES of its
    examples. `forward_of(path)` is the forward of the model written there."""
    sample = dev.sample(RANKING_EXAMPLES)

    def damage(path: Path) -> float:
        got = opened.outputs(forward_of(path), sample)
        return float(np.mean([np.abs(g - reference[i]).mean()
                              for g, i in zip(got, sample.index)]))

    return damage
