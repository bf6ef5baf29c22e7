"""Numerical checks between an artifact and its parent: refuse drift, never warn."""

from __future__ import annotations

import numpy as np

from edgebert import kinds
from edgebert.errors import UserError


def compare(ref: list[np.ndarray], got: list[np.ndarray], kind: str) -> dict:
    """max |delta logits| and top-1 agreement (per example; per token for NER; per
    start/end for QA; regression has no top-1 and reports 1.0).

    >>> compare([np.array([0., 1.])], [np.array([0.1, 0.9])], "classification")
    {'max_abs_diff': 0.1..., 'mean_abs_diff': 0.1..., 'top1_agreement': 1.0, 'n': 1}
    """
    diffs = [np.abs(a.astype(np.float64) - b.astype(np.float64)) for a, b in zip(ref, got)]
    max_diff = max(float(d.max()) for d in diffs) if diffs else 0.0
    mean_diff = float(np.mean([d.mean() for d in diffs])) if diffs else 0.0
    if not kinds.kind(kind).top1:
        agree = 1.0
    else:
        same = [np.argmax(a, -1) == np.argmax(b, -1) for a, b in zip(ref, got)]
        agree = float(np.mean(np.concatenate([np.atleast_1d(s).ravel() for s in same])))
    return {"max_abs_diff": max_diff, "mean_abs_diff": mean_diff, "top1_agreement": agree,
            "n": len(ref)}


def agreement_text(parity: dict, kind: str) -> str:
    """", top-1 agreement 99.80%" for a log line where the kind's outputs have a top-1;
    "" where they do not (regression: one value, `compare` records 1.0 for it).

    >>> agreement_text({"top1_agreement": 0.998}, "ner"), agreement_text({}, "regression")
    (', top-1 agreement 99.80%', '')
    """
    if not kinds.kind(kind).top1:
        return ""
    return f", top-1 agreement {parity['top1_agreement']:.2%}"


TOLERANCES = {"fp32": (1e-3, 0.999), "bf16": (0.25, 0.99)}
"""(max |delta logits|, least top-1 agreement) a float model may show against its FP32
parent on dev, by the precision it runs in: bf16 keeps 8 bits of mantissa, so logits move
by a few hundredths per unit and a prediction near the boundary may flip (at most 1 %)."""


def require(parity: dict, what: str, max_abs_diff: float, min_agreement: float) -> None:
    """Raise with the numbers when `parity` is outside the tolerance."""
    problems = []
    if parity["max_abs_diff"] > max_abs_diff:
        problems.append(f"max |delta logits| {parity['max_abs_diff']:.3g} > {max_abs_diff:g}")
    if parity["top1_agreement"] < min_agreement:
        problems.append(f"top-1 agreement {parity['top1_agreement']:.2%} < {min_agreement:.2%}")
    if problems:
        raise UserError(f"{what}: drifted from its parent on {parity['n']} dev examples "
                        f"({'; '.join(problems)}); refusing it")
