"""Gather a run directory into report rows: one per artifact (and target).

An artifact is any directory below the run with `stage.json` and `metrics.json`.
Latency comes from bench results in `<run>/bench/*.json` (schema edgebert.bench/1),
matched to artifacts by path (or by place in the run, for a run moved since);
imported results (another device) are labelled so.
Two workloads are read: padded batches (batch 1, 128 tokens by default) and the task's
own texts one at a time (`edgebert bench --texts`: what an app sends). An artifact for
another architecture than the bench machine's (arm64 on x86) shows "not measured" unless
results from a device were imported: emulated time is never a latency.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgebert.errors import UserError
from edgebert.formats import EXPORTS_FIRST, FORMAT, model_file
from edgebert.kinds import kind
from edgebert.metrics import paired_se
from edgebert.cpu import is_arm
from edgebert.targets import ARCHES, arch_of

SETTING = (1, 128)  # (batch, seq) shown in the table when measured
WORKLOADS = {"texts": "texts_p50_ms", "padded": "p50_ms"}
"""What a recommendation is timed on, and the row field it compares: the task's own texts
one at a time (default: what an app sends), or padded batches at the report's setting."""


def artifacts(run: Path) -> list[Path]:
    found = [p.parent for p in sorted(run.rglob("metrics.json"))
             if (p.parent / "stage.json").exists() and ".partial" not in str(p)]
    if not found:
        raise UserError(f"{run}: no artifacts (directories with stage.json and metrics.json)")
    return found


def bench_results(run: Path) -> list[dict]:
    from edgebert.bench.run import load

    out = []
    for f in sorted((run / "bench").glob("*.json")) if (run / "bench").exists() else []:
        data = load(f)
        for r in data["results"]:
            out.append(r | {"machine": data["machine"], "file": f.name})
    return out


def _format(stage: dict, path: Path) -> str:
    found = model_file(path, EXPORTS_FIRST)
    if found and found[1] == "pytorch":
        return "pytorch"
    return stage.get("format", found[1] if found else "?")


def _setting(results: list[dict]) -> tuple[int, int]:
    """(batch 1, seq 128) when measured, else the first setting that was."""
    got = [(r["batch"], r["seq"]) for r in results if r["seq"] != "texts"]
    return SETTING if SETTING in got or not got else got[0]


def _measured(recorded: str, resolved: set[Path], tails: set[tuple[str, ...]]) -> bool:
    """Whether a bench result measured the artifact whose files resolve to `resolved`: the
    same path, or, when the run directory was moved or copied since (the recorded path is
    gone), the same place inside the run (the recorded path ends with one of `tails`, the
    artifact's files below the run)."""
    rec = Path(recorded)
    if rec.resolve() in resolved:
        return True
    if rec.exists() or not recorded:
        return False
    return any(rec.parts[-len(t):] == t for t in tails)


def _result_arch(r: dict) -> str:
    """The architecture of the machine a bench result was timed on (imported ones
    included), from its fingerprint; a result without one, this machine's."""
    machine = (r.get("machine") or {}).get("machine")
    return arch_of(None) if not machine else "aarch64" if is_arm(machine) else "x86_64"


def _native(r: dict, arch: str) -> bool:
    """Whether a bench result is a latency of an artifact for `arch`: timed on a machine
    of that architecture (a device's imported results included), never under emulation."""
    return _result_arch(r) == arch


def _latency(path: Path, run: Path, arch: str, results: list[dict],
             setting: tuple[int, int] = SETTING) -> dict:
    files = (path, *(path / name for name in FORMAT))  # once per artifact, not per result
    resolved = {f.resolve() for f in files}
    tails = {t for t in (f.relative_to(run).parts for f in files) if t}
    mine = [r for r in results if _measured(r.get("path", ""), resolved, tails)
            and _native(r, arch)]
    pick = [r for r in mine if (r["batch"], r["seq"]) == setting]
    texts = [r for r in mine if r["seq"] == "texts"]
    if not pick and not texts:
        elsewhere = results and not any(_native(r, arch) for r in results)
        return {"latency_source": "not measured" if elsewhere or not results
                else "not benched"}
    r = (pick or texts)[0]
    source = (f"imported from {r.get('device') or r['machine'].get('cpu')}"
              if r.get("source") == "imported" else f"measured on {r['machine'].get('cpu')}")
    if r.get("timed_as"):  # ExecuTorch on this machine: its kernels' time, not a phone's
        source = f"{r['timed_as']}, {source}"
    out = {"latency_source": source}
    if pick:
        r = pick[0]
        out |= {"p50_ms": r["p50_ms"], "p90_ms": r["p90_ms"], "p99_ms": r["p99_ms"],
                "throughput_seq_s": r["throughput_seq_s"], "peak_rss_mb": r.get("peak_rss_mb"),
                "batch": r["batch"], "seq": r["seq"], "samples": r.get("n")}
    if texts:
        t = texts[0]
        out |= {"texts_p50_ms": t["p50_ms"], "texts_p90_ms": t["p90_ms"],
                "texts_count": (t.get("texts") or {}).get("count")}
    return out


def collect(run: Path, teacher: str | None = None) -> dict:
    run = Path(run)
    results = bench_results(run)
    setting = _setting(results)
    rows, outcomes = [], {}
    measured = [r for r in results if r.get("source") != "imported"]
    home = _result_arch(measured[0]) if measured else arch_of(None)
    for path in artifacts(run):
        stage = json.loads((path / "stage.json").read_text())
        m = json.loads((path / "metrics.json").read_text())
        metric = m.get("metric")
        target = stage.get("target")
        row = {"artifact": str(path.relative_to(run)), "stage": stage.get("stage"),
               "format": _format(stage, path), "precision": stage.get("precision", "fp32"),
               "target": target or "any", "params": m.get("params"),
               "size_mb": m.get("size_mb"), "metric": metric,
               "accuracy": (m.get("test") or {}).get(metric) if metric else None}
        outcomes[row["artifact"]] = (m.get("test") or {}).get("outcomes")
        arm = m.get("arm64_emulation")
        if arm:
            row["arm64_emulation"] = arm
        # a target's own architecture; an artifact for any ("any": an FP32 export), the
        # architecture of the machine that benched the run
        row["arch"] = arch_of(target) if target else home
        rows.append(row | _latency(path, run, row["arch"], results, setting))
    ref = next((r for r in rows if r["artifact"] == teacher), None) if teacher else \
        next((r for r in rows if r["stage"] == "finetune"), None)
    for r in rows:
        if ref and r["accuracy"] is not None and ref["accuracy"] is not None:
            r["delta_vs_teacher"] = 100.0 * (r["accuracy"] - ref["accuracy"])
            if r is not ref:
                r["delta_se"] = paired_se(outcomes[r["artifact"]], outcomes[ref["artifact"]],
                                          r["metric"])
        if ref and r.get("p50_ms") and ref.get("p50_ms"):
            r["speedup_vs_teacher"] = ref["p50_ms"] / r["p50_ms"]
        if ref and r.get("texts_p50_ms") and ref.get("texts_p50_ms"):
            r["texts_speedup_vs_teacher"] = ref["texts_p50_ms"] / r["texts_p50_ms"]
        if ref and r.get("size_mb") and ref.get("size_mb"):
            r["size_ratio_vs_teacher"] = ref["size_mb"] / r["size_mb"]
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    task = json.loads((run / ref["artifact"] / "stage.json").read_text()).get("task") \
        if ref else None
    shape = kind(task["kind"]).input_shape(*setting) if task else setting
    return {"schema": "edgebert.report/1", "run": str(run), "teacher": ref and ref["artifact"],
            "setting": {"batch": setting[0], "seq": setting[1], "input_shape": list(shape)},
            "machines": [json.loads(m) for m in sorted(machines)], "rows": rows}


def _arch_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by the architecture their target runs on, named as the report names them; an
    artifact checked under arm64 emulation beside x86 (an ExecuTorch .pte, an OpenVINO IR:
    both run on either) is a candidate on arm64 as well."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        arches = {r.get("arch") or arch_of(None)}
        if (r.get("arm64_emulation") or {}).get("checked"):
            arches.add("aarch64")
        for arch in sorted(arches):
            out.setdefault(ARCHES[arch], []).append(r)
    return out


def points_phrase(budget: float) -> str:
    """
    >>> points_phrase(1.0), points_phrase(0.5)
    ('1 point', '0.5 points')
    """
    return f"{budget:g} point{'' if budget == 1 else 's'}"


def recommend(rows: list[dict], budget: float, workload: str = "texts") -> dict[str, str]:
    """Per architecture (x86, arm64), the fastest artifact within `budget` points of the
    teacher, across runtimes and formats, timed on `workload` (WORKLOADS; where no row was
    timed on it, the other one). Where none was timed, the smallest is named and says why
    (bench disabled; or no device latency, as emulation is not a device)."""
    ok = [r for r in rows if r.get("delta_vs_teacher") is not None
          and r["delta_vs_teacher"] >= -budget and r["stage"] != "finetune"]
    within = f"within {points_phrase(budget)}"
    picks: dict[str, str] = {}
    for arch, candidates in _arch_rows(ok).items():
        # a time counts on the architecture it was measured on (a .pte's is x86's)
        here = [r for r in candidates if ARCHES[r.get("arch") or arch_of(None)] == arch]
        key = WORKLOADS[workload]
        if not any(r.get(key) for r in here):
            key = next((k for k in WORKLOADS.values() if any(r.get(k) for r in here)), key)
        timed = [r for r in here if r.get(key)]
        on = "the task's texts one at a time" if key == "texts_p50_ms" else "padded inputs"
        if timed:
            best = min(timed, key=lambda r: r[key])
            said = f"fastest {within} of the teacher on {arch}, on {on}"
        else:
            best = min(candidates, key=lambda r: r.get("size_mb") or float("inf"))
            why = ("no latency measured: `edgebert bench` them, or keep bench enabled"
                   if ARCHES[arch_of(None)] == arch else
                   "no device latency: emulated time is not one")
            runtimes = sorted({r["format"] for r in candidates})
            among = f", among {', '.join(runtimes[:-1])} and {runtimes[-1]}" \
                if len(runtimes) > 1 else ""
            said = f"smallest {within} of the teacher on {arch}{among} ({why})"
        # one row may be picked on two architectures (a .pte or an IR runs on both)
        best["recommended"] = "; ".join(filter(None, (best.get("recommended"), said)))
        picks[arch] = best["artifact"]
    return picks


def missed(rows: list[dict], budget: float, picks: dict[str, str]) -> dict[str, dict]:
    """Architectures with artifacts but none within `budget`: the most accurate candidate
    and its drop, so the report says why one has no recommendation."""
    out = {}
    candidates = [r for r in rows if r["stage"] != "finetune"
                  and r.get("delta_vs_teacher") is not None]
    for arch, rows_t in _arch_rows(candidates).items():
        if arch not in picks:
            best = max(rows_t, key=lambda r: r["delta_vs_teacher"])
            out[arch] = {"best": best["artifact"], "delta_vs_teacher": best["delta_vs_teacher"],
                         "delta_se": best.get("delta_se"), "budget_points": budget}
    return out


def weak_teacher(rows: list[dict], budget: float) -> dict | None:
    """The compressed artifact that beats its teacher by more than the budget, if any: the
    teacher is then a weak reference (undertrained), and "within the budget" of it says
    little. WNUT's default teacher once scored entity F1 0.08 while its students, trained on
    the labels too, reached 0.44. Where the Δ has a standard error, the excess must also be
    over two of them: a WNUT student at +2.82 entity F1 points had an SE of 3.2,
    a small test split (239 sentences, 144 entities), not a weak teacher."""
    better = [r for r in rows if r["stage"] != "finetune"
              and (r.get("delta_vs_teacher") or 0.0) > max(budget, 0.0,
                                                           2.0 * (r.get("delta_se") or 0.0))]
    if not better:
        return None
    best = max(better, key=lambda r: r["delta_vs_teacher"])
    return {"artifact": best["artifact"], "delta_vs_teacher": best["delta_vs_teacher"]}


def pareto(rows: list[dict]) -> list[str]:
    """Artifacts no other beats on both accuracy (higher) and p50 latency (lower)."""
    pts = [r for r in rows if r.get("p50_ms") and r.get("accuracy") is not None]
    front = []
    for r in pts:
        dominated = any(o is not r and o["accuracy"] >= r["accuracy"] and o["p50_ms"] <= r["p50_ms"]
                        and (o["accuracy"] > r["accuracy"] or o["p50_ms"] < r["p50_ms"])
                        for o in pts)
        if not dominated:
            front.append(r["artifact"])
    return front
