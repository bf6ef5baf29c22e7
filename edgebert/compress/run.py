"""`edgebert compress`: every stage of a recipe, in order, into one run directory.

Each stage is the same function its own subcommand calls, writing `<run>/<name>/` (the
layout: `compress.plan`); a finished stage (its metrics.json exists) is skipped, an
unfinished one resumes from its checkpoint. So a killed run is resumed by running the same
command again. The steps are planned again after each one, from what the run directory
holds then (`survey`): what comes next may depend on what a step gave.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgebert import artifact
from edgebert.compress.budget import (dev_examples, dev_lost, quantize_within_budget,
                                      within_budget)
from edgebert.compress.eta import estimate
from edgebert.compress.plan import BENCH, COPY_TEACHER, REFUSED, Found, Step, plan
from edgebert.compress.recipe import Recipe, load
from edgebert.config import to_dict
from edgebert.errors import UserError
from edgebert.stages import STAGES

RUNTIME_PACKAGES = {"openvino": ("openvino", "nncf"), "executorch": ("executorch",)}
"""What a runtime's steps need beyond the cli install (`edgebert[openvino]`)."""


def survey(recipe: Recipe, run: Path) -> Found:
    """What `plan` needs beyond the recipe: the teacher's tokenizer type, this CPU's target,
    the runtimes not installed, and what the finished models of `run` lost on dev."""
    import importlib.util

    from edgebert.data.tasks import task_kind
    from edgebert.modeling import non_wordpiece
    from edgebert.sources import resolve_model
    from edgebert.targets import native_target

    missing = {runtime: tuple(p for p in packages if importlib.util.find_spec(p) is None)
               for runtime, packages in RUNTIME_PACKAGES.items()}
    found = Found(native_target=native_target(),
                  tokenizer=non_wordpiece(resolve_model(recipe.teacher.model)),
                  missing={runtime: names for runtime, names in missing.items() if names},
                  kind=task_kind(recipe.task),
                  refused=frozenset(str(p.relative_to(run))[:-len(REFUSED)]
                                    for p in run.glob(f"*/*{REFUSED}")))
    teacher = run / "teacher"
    if not artifact.is_complete(teacher):
        return found
    from dataclasses import replace

    from transformers import AutoConfig

    finished = [p for p in sorted(run.iterdir()) if p.is_dir() and artifact.is_complete(p)]
    # a local task without --kind is known once the teacher has loaded it
    task = artifact.read_json(teacher / "stage.json").get("task") or {}
    return replace(found, kind=found.kind or task.get("kind"),
                   dev_lost={p.name: dev_lost(teacher, p) for p in finished},
                   dev_examples=dev_examples(teacher),
                   train_examples=(task.get("sizes") or {}).get("train", 0),  # 0: not said
                   teacher_layers=AutoConfig.from_pretrained(str(teacher)).num_hidden_layers)


def steps_of(recipe: Recipe, run: Path, log=print) -> list[Step]:
    """The plan of `recipe` for the run directory `run` as it is now.

    >>> # for step in steps_of(load("tiny"), Path("runs/smoke")): print(step.title)
    """
    return plan(recipe, run, survey(recipe, run), log)


def run_step(step: Step, steps: list[Step], recipe: Recipe, run: Path, log) -> Path:
    """Run one step: its stage (an unfinished output is resumed, every stage's default), an
    INT8 step with the guard the chain's budget leaves it, or one of compress's own."""
    if step.stage == COPY_TEACHER:
        return _copy_teacher(step.config.model, step.out, log)
    if step.stage == BENCH:
        return _bench(step, run, steps, log)
    if step.stage == "quantize":
        made = [s.out for s in steps[:steps.index(step)] if s.stage == "quantize"]
        return quantize_within_budget(step.config, run / "teacher", recipe.max_accuracy_drop,
                                      log, made)
    if step.stage == "export" and step.config.precision == "int8":  # ExecuTorch's INT8
        return _optional_export(step, within_budget(step.config, run / "teacher",
                                                    recipe.max_accuracy_drop, log), log)
    return STAGES[step.stage].run(step.config, log=log)


def _optional_export(step: Step, cfg, log) -> Path:
    """An export the chain can do without (the .pte for phones): where its budget or its
    arm64 check refuses it, the refusal is written beside it (`<out>.refused`, which the
    plan then skips, so a resume does not try again) and the chain goes on to its bench
    and report."""
    try:
        return STAGES["export"].run(cfg, log=log)
    except UserError as err:
        refused = step.out.with_name(step.out.name + REFUSED)
        refused.write_text(f"{err}\n")
        log(f"{step.title}: refused, the run goes on without it ({err}); delete {refused} "
            f"to try it again")
        return step.out


def _copy_teacher(source: str, out: Path, log) -> Path:
    src = Path(source)
    if not (src / "metrics.json").exists() or not (src / "stage.json").exists():
        raise UserError(f"teacher.model {source}: `finetuned: true` needs an `edgebert finetune` "
                        f"artifact (stage.json and metrics.json)")
    if artifact.already_done(out, log, "finetune"):
        return out
    work = artifact.partial_dir(out)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("checkpoint", "*.partial",
                                                             "metrics.json"))
    artifact.write_json(work / "metrics.json", artifact.read_json(src / "metrics.json"))  # last
    out.parent.mkdir(parents=True, exist_ok=True)
    work.rename(out)
    return out


def _bench(step: Step, run: Path, steps: list[Step], log) -> Path:
    """Interleaved latency of every artifact this machine runs natively: padded inputs
    (recipe.bench batch x seq), then the task's test texts one at a time (bench.texts), in
    one file, `step.out`. One pass: each artifact's turn is one process that times both
    (a process per workload would start every model twice, for seconds of timing)."""
    from edgebert.bench.run import bench, covers, task_texts, task_workloads

    out = step.out
    models = [str(s.out) for s in steps if s.out.is_dir() and not _emulated_only(s.out)]
    if covers(out, models):
        log(f"{out} is already measured; skipping")
        return out
    if out.exists():
        log(f"{out} lacks artifacts this run made since: measuring every one again")
    b = step.config.settings
    texts = task_texts(run / "teacher", b.texts, run / "bench" / "test_texts.txt") \
        if b.texts else None
    if texts:
        log(f"padded inputs, then the task's test texts one at a time ({b.texts} of them), "
            f"in the same processes:")
    elif b.texts:
        log("the task's examples are not single texts: padded inputs only")
    data = bench(models, b, log=log, workloads=task_workloads(b, texts, b.texts))
    out.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_json(out, data)
    return out


def _resolved(saved: Path) -> str | None:
    """A run's recipe.yaml as this version resolves it (None where it no longer loads)."""
    import yaml

    try:
        return yaml.safe_dump(to_dict(load(str(saved))), sort_keys=False)
    except UserError:
        return None


def _emulated_only(path: Path) -> bool:
    """Artifacts for another architecture (arm64 on x86): timing them here would be this
    machine's time, not the device's."""
    from edgebert.targets import TARGETS

    stage = path / "stage.json"
    name = artifact.read_json(stage).get("target") if stage.exists() else None
    return name in TARGETS and not TARGETS[name].runs_here()


def compress(recipe: Recipe, out: str, log=print) -> dict:
    """Run every stage of `recipe` into `out`; returns the report. A second run into the
    same `out` while this one lives is refused (it would resume the same stages at once).

    >>> # report = compress(load("tiny"), "runs/smoke")
    """
    with artifact.locked(Path(out)):
        return _compress(recipe, Path(out), log)


def finished(step: Step) -> bool:
    return step.out.is_file() if step.out.suffix == ".json" else artifact.is_complete(step.out)


def _compress(recipe: Recipe, run: Path, log) -> dict:
    import yaml

    from edgebert.report.render import write_report

    run.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(to_dict(recipe), sort_keys=False)
    saved = run / "recipe.yaml"
    # read back as a recipe: a field this version added, at its default, and an old spelling
    # are the same recipe, so a run upgraded mid-way resumes
    text = saved.read_text() if saved.exists() else None
    if text is not None and text != resolved and _resolved(saved) != resolved:
        raise UserError(f"--out {run}: holds a run of another recipe ({saved} differs); "
                        f"choose another --out, or delete {run} to start over")
    if text != resolved:  # written, or rewritten with every field this version has
        tmp = saved.with_name("recipe.yaml.tmp")
        tmp.write_text(resolved)
        tmp.replace(saved)
    said: set[str] = set()

    def once(msg: str) -> None:  # the plan is made again after every step: say things once
        if msg not in said:
            said.add(msg)
            log(msg)

    timings_path = run / "timings.json"  # seconds per stage, summed over resumed invocations
    timings = artifact.read_json(timings_path) if timings_path.exists() else {}
    shown: set[Path] = set()
    ran: set[Path] = set()
    while True:
        # planned again after each step: what comes next may depend on what a step gave
        # (fallback_model reads the finished models' dev metrics)
        steps = steps_of(recipe, run, once)
        todo = None
        for i, step in enumerate(steps, 1):
            if not finished(step):
                todo = (i, step)
                break
            if step.out not in shown:
                shown.add(step.out)
                log(f"[{i}/{len(steps)}] {step.title} -> {step.out}  (done)")
        if todo is None:
            break
        i, step = todo
        if step.out in ran:  # ran once and still not finished: never loop on it
            raise RuntimeError(f"{step.title}: returned without finishing {step.out}")
        ran.add(step.out)
        shown.add(step.out)
        log(f"[{i}/{len(steps)}] {step.title} -> {step.out}")
        left = estimate(steps, [s for s in steps[i - 1:] if not finished(s)], run, timings)
        if left is not None:
            log(f"[{i}/{len(steps)}] left in this run: {left.line()}")
        t0 = time.monotonic()
        run_step(step, steps, recipe, run, log)
        seconds = time.monotonic() - t0
        key = str(step.out.relative_to(run))
        timings[key] = round(timings.get(key, 0.0) + seconds, 1)
        artifact.write_json(timings_path, timings)
        log(f"[{i}/{len(steps)}] finished in {seconds:.0f} s")
    report = write_report(run, "teacher", budget=recipe.max_accuracy_drop,
                          workload=recipe.bench.workload)
    report["stage_seconds"] = timings
    return report
