"""Learned structured pruning of a task's teacher at several sparsity targets, beside what
the default chain recommends for the task on the same CPU.

    python benchmarks/learned_prune.py TASK [SPARSITY ...]   # default: 0.3 0.6
    # -> store rows, suite learned_prune: a case per TASK/sparsity, and TASK/chain

Needs the task's finished default chain (`python benchmarks/tasks.py TASK`, in
`$EDGEBERT_BENCH_RUNS/tasks/TASK`). For each target, what `compress` does where it prunes by
learned masks (Recipe.learned_prune), with the chain's own recipe: `prune-learned` from the
chain's teacher, the vocabulary trimmed, INT8 for this CPU's target within what the budget
leaves (the chain's quantize_within_budget). Where the chain made these itself at that
target (a small task's chain does, at the recipe's sparsity), its artifacts are taken.
Then one interleaved bench of the teacher, the chain's recommended x86 artifact and every
learned INT8 model, with the recipe's bench settings (128 padded tokens, and the task's
test texts one at a time), and `edgebert report` over them: test metric, Δ ± SE against
the teacher, size and speed-up over the PyTorch teacher, all from one run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import common
from common import record, run, script_command, usage

SUITE = "learned_prune"
SPARSITIES = [0.3, 0.6]


def chain_dir(task: str) -> Path:
    chain = common.RUNS / "tasks" / task
    if not (chain / "report.json").exists():
        raise SystemExit(f"{chain}: no finished chain; run python benchmarks/tasks.py {task}")
    return chain


def link_copy(src: Path, dst: Path) -> None:
    """A finished artifact into the sweep's run directory, its files hard-linked (no copy of
    the weights, and nothing written back into the chain)."""
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, copy_function=os.link,
                        ignore=shutil.ignore_patterns("checkpoint", "*.partial"))


def learned_int8(recipe, sweep: Path, sparsity: float) -> tuple[str, float]:
    """The learned model at `sparsity`, trimmed and in INT8 for this CPU, as the chain makes
    them; its path relative to `sweep`, and the seconds it took."""
    from edgebert.compress.budget import quantize_within_budget
    from edgebert.compress.recipe import stage_options
    from edgebert.stages import STAGES
    from edgebert.targets import native_target

    started = time.perf_counter()
    name = f"learned-{sparsity:g}"
    teacher = sweep / "teacher"
    stage = STAGES["prune-learned"]
    options = stage_options(recipe.learned_prune, stage.config) | {"sparsity": sparsity}
    stage.run(stage.config(model=str(teacher), teacher=str(teacher), out=str(sweep / name),
                           **options))
    trim = STAGES["trim-vocab"]
    trimmed = sweep / f"{name}_trimmed"
    trim.run(trim.config(model=str(sweep / name), out=str(trimmed),
                         **stage_options(recipe.trim_vocab, trim.config)))
    target = native_target()
    entry = next((q for q in recipe.quantize if q.target == "native"), None)
    if entry is None:
        raise SystemExit("the chain's recipe has no quantize entry for target native")
    out = sweep / "int8" / f"{target}-{name}"
    quantize = STAGES["quantize"]
    quantize_within_budget(quantize.config(model=str(trimmed), out=str(out), target=target,
                                           **stage_options(entry, quantize.config)),
                           teacher, recipe.max_accuracy_drop, print)
    return str(out.relative_to(sweep)), time.perf_counter() - started


def from_chain(chain: Path, sweep: Path, sparsity: float) -> tuple[str, float] | None:
    """Where the chain itself pruned its teacher by learned masks at `sparsity` (a small
    task's chain does) and made that model's INT8 for this CPU: the three, linked into the
    sweep under its names, and the seconds the chain's timings give them; else None."""
    from edgebert.compress.recipe import LEARNED
    from edgebert.targets import native_target

    name, target = f"learned-{sparsity:g}", native_target()
    made = {LEARNED: name, f"{LEARNED}_trimmed": f"{name}_trimmed",
            f"int8/{target}-{LEARNED}": f"int8/{target}-{name}"}
    stage = chain / LEARNED / "stage.json"
    if not stage.exists() or json.loads(stage.read_text())["config"]["sparsity"] != sparsity \
            or not all((chain / m / "metrics.json").exists() for m in made):
        return None
    timings = json.loads((chain / "timings.json").read_text())
    for src, dst in made.items():
        link_copy(chain / src, sweep / dst)
    return made[f"int8/{target}-{LEARNED}"], sum(timings.get(m, 0.0) for m in made)


def bench_and_report(recipe, sweep: Path, models: list[str]) -> dict:
    """One interleaved bench of `models` (the recipe's settings), then the report. A bench
    of these models, made after every one of them, is reused."""
    from edgebert.artifact import write_json
    from edgebert.bench.run import bench, covers, task_texts, task_workloads

    b = recipe.bench
    paths = [str(sweep / m) for m in models]
    out = sweep / "bench" / "latency.json"
    newest = max((sweep / m / "metrics.json").stat().st_mtime for m in models)
    if not (covers(out, paths) and out.stat().st_mtime > newest):
        shutil.rmtree(out.parent, ignore_errors=True)
        out.parent.mkdir(parents=True)
        texts = task_texts(sweep / "teacher", b.texts, out.parent / "test_texts.txt")
        write_json(out, bench(paths, b, workloads=task_workloads(b, texts, b.texts)))
    run(["edgebert", "report", sweep, "--max-accuracy-drop", recipe.max_accuracy_drop])
    return json.loads((sweep / "report.json").read_text())


def main(task: str, sparsities: list[float]) -> None:
    from edgebert.compress.recipe import load

    chain = chain_dir(task)
    recipe = load(str(chain / "recipe.yaml"))
    sweep = common.RUNS / SUITE / task
    link_copy(chain / "teacher", sweep / "teacher")
    from edgebert.targets import native_target

    chosen = json.loads((chain / "report.json").read_text())["recommended"].get("x86")
    # beside: the chain's recommendation, and the teacher's own INT8 where the chain made it
    # (a small task's: Recipe.teacher_int8_below)
    teacher_int8 = f"int8/{native_target()}-teacher"
    shown = [m for m in dict.fromkeys([chosen, teacher_int8])
             if m and m != "teacher" and (chain / m / "metrics.json").exists()]
    for m in shown:
        link_copy(chain / m, sweep / m)
    models = ["teacher"] + shown
    timed = sweep / "seconds.json"  # each target's stages, from the invocation that ran them
    seconds = {float(k): v for k, v in json.loads(timed.read_text()).items()} \
        if timed.exists() else {}
    for s in sparsities:
        made, took = from_chain(chain, sweep, s) or learned_int8(recipe, sweep, s)
        if s not in seconds or took > 60:  # under a minute: finished before, nothing ran
            seconds[s] = took
            timed.write_text(json.dumps({str(k): v for k, v in seconds.items()}))
        models.append(made)
    report = bench_and_report(recipe, sweep, models)
    rows = {r["artifact"]: r for r in report["rows"]}
    keep = ("artifact", "params", "size_mb", "accuracy", "delta_vs_teacher", "delta_se",
            "p50_ms", "speedup_vs_teacher", "texts_p50_ms", "texts_speedup_vs_teacher",
            "latency_source")
    cases = {f"{task}/chain": {"recommended": chosen, "teacher_accuracy":
                               rows[report["teacher"]]["accuracy"],
                               **{k: rows.get(chosen, {}).get(k) for k in keep}}}
    if teacher_int8 in shown:
        cases[f"{task}/teacher int8"] = {k: rows[teacher_int8].get(k) for k in keep}
    for s, made in zip(sparsities, models[-len(sparsities):]):
        learned = json.loads((sweep / f"learned-{s:g}" / "metrics.json").read_text())
        cases[f"{task}/sparsity {s:g}"] = {
            "sparsity_target": s, "sparsity": learned["learned"]["reached_sparsity"],
            "expected_sparsity": learned["learned"]["expected_sparsity"],
            "heads_per_layer": learned["shapes"]["heads_per_layer"],
            "ffn_width": learned["learned"]["ffn_width"],
            "dev_accuracy": (learned.get("dev") or {}).get(learned.get("metric", "")),
            "seconds_learned_to_int8": round(seconds[s], 1),
            **{k: rows.get(made, {}).get(k) for k in keep}}
    for case, row in cases.items():
        print(case, json.dumps({k: row.get(k) for k in ("artifact", "accuracy",
                                                        "delta_vs_teacher", "delta_se",
                                                        "speedup_vs_teacher", "size_mb")}))
    record(SUITE, cases, threads=recipe.bench.threads, command=script_command(__file__),
           notes={"chain": str(chain)})


if __name__ == "__main__":
    usage(__doc__)
    if len(sys.argv) < 2:
        raise SystemExit("usage: python benchmarks/learned_prune.py TASK [SPARSITY ...]")
    main(sys.argv[1], [float(s) for s in sys.argv[2:]] or SPARSITIES)
