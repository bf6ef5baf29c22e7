"""Two commits or two machines side by side, for one suite of the store.

    python benchmarks/compare.py peers machine=epyc-avx2 machine=epyc-vnni
    python benchmarks/compare.py peers commit=4bdc60c commit=632c4db [--metric p50_ms]

Each side is the suite's newest run among the rows it selects (machine: a machine kind,
store.machine_key; commit: a prefix). Every numeric metric of a case both sides hold is
printed with its ratio B / A.
"""

from __future__ import annotations

import argparse

import store
from tablefmt import newest_run


def numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a metrics dict, by dotted name."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[prefix + k] = v
        elif isinstance(v, dict):
            out |= numbers(v, f"{prefix}{k}.")
    return out


def compare(suite: str, a: dict, b: dict, metric: str | None = None) -> str:
    """A markdown table of case, metric, A, B and B / A."""
    left = {r.case: numbers(r.metrics) for r in newest_run(suite, **a)}
    right = {r.case: numbers(r.metrics) for r in newest_run(suite, **b)}
    lines = [f"| case | metric | {fmt(a)} | {fmt(b)} | B / A |", "|---|---|---|---|---|"]
    for case in [c for c in left if c in right]:
        for name in [n for n in left[case] if n in right[case]]:
            if metric and not name.endswith(metric):
                continue
            x, y = left[case][name], right[case][name]
            ratio = f"{y / x:.2f}" if x else "-"
            lines.append(f"| {case} | {name} | {x:.4g} | {y:.4g} | {ratio} |")
    return "\n".join(lines)


def fmt(where: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in where.items())


def side(text: str) -> dict:
    key, _, value = text.partition("=")
    if key not in ("machine", "commit") or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: give machine=KIND or commit=PREFIX")
    return {key: value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", help=f"one of: {', '.join(sorted({r.suite for r in store.load()}))}")
    ap.add_argument("a", type=side)
    ap.add_argument("b", type=side)
    ap.add_argument("--metric", help="only metrics whose name ends so (p50_ms)")
    a = ap.parse_args()
    print(compare(a.suite, a.a, a.b, a.metric))


if __name__ == "__main__":
    main()
