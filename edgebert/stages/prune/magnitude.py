"""Unstructured magnitude pruning on the cubic schedule of Zhu & Gupta (2017).

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0))^3   for t0 <= t <= t1

Masks are recomputed every `every` steps from the current magnitudes (global
threshold, or one per weight matrix) and re-applied after every optimizer step,
so pruned weights stay at zero during recovery; at the end they are baked in.
Only encoder Linear weights are pruned: embeddings, pooler and head stay dense.
"""

from __future__ import annotations

import torch

from edgebert.families import family_of


def prunable(model) -> dict[str, torch.nn.Parameter]:
    """The Linear weights of the encoder's layers (an ALBERT's shared layer once)."""
    family = family_of(model)
    return {f"layer.{i}.{name}": module.weight
            for i, layer in enumerate(family.layer_list(model))
            for name, module in layer.named_modules() if isinstance(module, torch.nn.Linear)}


def cubic(step: int, total: int, final: float, initial: float = 0.0,
          begin: float = 0.0, end: float = 0.7) -> float:
    """Sparsity at `step` of `total`: ramps from `initial` to `final` between the
    fractions `begin` and `end` of training, then holds.

    >>> [round(cubic(s, 10, 0.8), 3) for s in (0, 7, 10)]
    [0.0, 0.8, 0.8]
    """
    t0, t1 = begin * total, max(end * total, begin * total + 1)
    if step <= t0:
        return initial
    if step >= t1:
        return final
    return final + (initial - final) * (1 - (step - t0) / (t1 - t0)) ** 3


def masks(params: dict[str, torch.Tensor], sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """Keep-masks removing the `sparsity` fraction of smallest |w| (global or per matrix)."""
    if sparsity <= 0:
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    if scope == "global":
        flat = torch.cat([p.detach().abs().flatten() for p in params.values()])
        k = int(sparsity * flat.numel())
        threshold = flat.kthvalue(k).values if k > 0 else flat.min() - 1
        return {n: p.detach().abs() > threshold for n, p in params.items()}
    out = {}
    for n, p in params.items():
        flat = p.detach().abs().flatten()
        k = int(sparsity * flat.numel())
        threshold = flat.kthvalue(k).values if k > 0 else flat.min() - 1
        out[n] = p.detach().abs() > threshold
    return out


class MagnitudePruner:
    """`after_step` hook for the training loop."""

    def __init__(self, model, target: float, scope: str = "global", every: int = 10,
                 end: float = 0.7):
        self.params = prunable(model)
        self.target, self.scope, self.every = target, scope, every
        self.end = end
        """Fraction of the steps at which the target sparsity is reached (then held)."""
        self.current: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def __call__(self, step: int, total: int) -> None:
        if self.current is None or step % self.every == 0 or step == total:
            self.current = masks(self.params, cubic(step, total, self.target, end=self.end),
                                 self.scope)
        for name, p in self.params.items():
            p.mul_(self.current[name])

    @torch.no_grad()
    def bake(self) -> None:
        """Final masks at the target sparsity, applied for good."""
        self.current = masks(self.params, self.target, self.scope)
        for name, p in self.params.items():
            p.mul_(self.current[name])


def sparsity_report(model) -> dict:
    params = prunable(model)
    per = {n: float((p == 0).float().mean()) for n, p in params.items()}
    zeros = sum(int((p == 0).sum()) for p in params.values())
    total = sum(p.numel() for p in params.values())
    return {"overall": zeros / total, "per_matrix": per}
