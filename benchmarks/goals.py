"""The project's targets on each kind of CPU, from the peers runs in the store: the table
of docs/benchmarks.md's "Against the project's targets" (`python benchmarks/tables.py`).

Each cell is a verdict and its figures per run: a ratio at 128 tokens with the one on
the task's real texts in brackets, then the recommended artifact's accuracy against the
alternative's in points. The INT8-over-FP32 goal adds the int8_variants run of that
machine kind (the graph's variants timed at 2 threads and at 1).
"""

from __future__ import annotations

from pathlib import Path

import store
from tablefmt import markdown, newest_run

KINDS = ("epyc-avx2", "epyc-vnni", "xeon-amx")
"""The table's columns."""
GOALS = (">= 8x over Optimum's INT8, within 0.3 points",
         ">= 20x over the FP32 PyTorch teacher, within 1 point",
         "INT8 over the FP32 export of the same model: >= 2.5x (VNNI), >= 2x (AVX2)",
         "recommended artifact <= 4 MB, one-file model <= 4.5 MB",
         "useful INT8 ops >= 50 % of the large-GEMM rate")


def yes(ok: bool) -> str:
    return "**yes**" if ok else "no"


def faster(run: dict, peer: str, times: float, within: float) -> tuple[str, str]:
    """The recommended artifact `times` faster than `peer` within `within` points of it?"""
    rec, other = run["edgebert-recommended"], run[peer]
    padded = other["p50_ms"] / rec["p50_ms"]
    texts = other["texts_p50_ms"] / rec["texts_p50_ms"]
    delta = 100 * (rec["test_accuracy"] - other["test_accuracy"])
    close = delta >= -within

    def ratio(x: float) -> str:
        return f"**{x:.1f}x**" if close and x >= times else f"{x:.1f}x"
    verdict = ("**yes**" if close and padded >= times
               else "on real texts" if close and texts >= times else "no")
    return verdict, f"{ratio(padded)} ({ratio(texts)}), {delta:+.2f}"


def run_goals(run: dict) -> list[tuple[str, str]]:
    """(verdict, figures) of each goal in one peers run ({case: metrics})."""
    rec, one = run["edgebert-recommended"], run["edgebert-one-file"]
    summary = run["summary"]
    over_fp32 = run["edgebert-fp32-onnx"]["p50_ms"] / rec["p50_ms"]
    roof = summary["roofline"]  # the keys a later peers.py names for any precision, or not
    share = roof.get("fraction_of_int8_gemm", roof.get("fraction_of_gemm"))
    peak = roof.get("matmulinteger_peak_gop_s", roof.get("gemm_peak_gop_s"))
    return [faster(run, "optimum-int8", 8, 0.3), faster(run, "teacher-pytorch", 20, 1.0),
            (yes(over_fp32 >= (2.5 if summary["target"] == "x86-vnni" else 2.0)),
             f"{over_fp32:.2f}x"),
            (yes(rec["size_mb"] <= 4 and one["size_mb"] <= 4.5),
             f"{rec['size_mb']:.2f} / {one['size_mb']:.2f} MB"),
            (yes(share >= 0.5), f"{100 * share:.0f} % of {peak:,.0f} GOP/s")]


def said_once(cells: list[tuple[str, str]]) -> str:
    """The runs' `verdict: figures`, a verdict said once for the runs after it that share it."""
    out = [figures if i and verdict == cells[i - 1][0] else f"{verdict}: {figures}"
           for i, (verdict, figures) in enumerate(cells)]
    return " / ".join(out)


def variants(path: Path, kind: str, commit: str) -> str:
    """INT8 over the FP32 export in the int8_variants run at `commit` on this kind of
    machine, else in its newest there; nothing where it has none."""
    found = store.rows("int8_variants", machine=kind, path=path)
    if not found:
        return ""
    at = [r for r in found if r.commit.startswith(commit)] or newest_run(
        "int8_variants", machine=kind, path=path)
    p50 = {r.case: r.metrics["latency"] for r in at if r.case in ("fp32_ort", "shipped")}

    def ratio(threads: str) -> float:
        return p50["fp32_ort"][threads]["p50_ms"] / p50["shipped"][threads]["p50_ms"]
    return (f" (variants run: {ratio('2_threads'):.2f}x, {ratio('1_threads'):.2f}x at one "
            f"thread)")


def goals(path: Path = store.STORE, **commits: str) -> str:
    """Every goal on each machine kind: its newest peers run, or the runs at the commits
    the marker names for it (`xeon-amx=4bdc60c,632c4db`)."""
    header, columns = ["goal"], []
    for kind in KINDS:
        runs = [newest_run("peers", machine=kind, commit=c, path=path)
                for c in (commits[kind].split(",") if kind in commits else [None])]
        cells = [run_goals({r.case: r.metrics for r in run}) for run in runs]
        column = [said_once([c[g] for c in cells]) for g in range(len(GOALS))]
        column[2] += variants(path, kind, runs[0][0].commit)
        header.append(store.machine_label(runs[0][0].machine)
                      + (f" ({len(runs)} runs)" if len(runs) > 1 else ""))
        columns.append(column)
    return markdown([header] + [[goal, *(c[g] for c in columns)]
                                for g, goal in enumerate(GOALS)])
