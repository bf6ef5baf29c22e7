"""`edgebert compress`: every stage of a recipe, in order, into one run directory.

Each stage is the same function its own subcommand calls, writing
`<run>/<name>/`; a finished stage (its metrics.json exists) is skipped, an
unfinished one resumes from its checkpoint. So a killed run is resumed by
running the same command again.

    <run>/recipe.yaml        the resolved recipe (every default filled in)
    <run>/teacher/           fine-tuned teacher
    <run>/<student>/         distilled students, <run>/<pruned>/ pruned ones
    <run>/<name>_trimmed/    vocabulary-trimmed copies (trim_vocab)
    <run>/<name>_deep/       the chain again from a deeper student, where the student spent
                             the budget (Recipe.deeper)
    <run>/int8/<target>/     INT8 ONNX per target
    <run>/int8/<target>-<m>/ INT8 of an earlier model m, where the last one spent the budget
    <run>/export/<format>/   ONNX / ORT / TorchScript exports (<format>-text: tokenizer inside)
    <run>/bench/latency.json interleaved latency of every artifact (arm64 excepted)
    <run>/report.*           the report, with the recommended artifact per target
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edgebert import artifact
from edgebert.compress.recipe import Recipe, stage_options
from edgebert.config import (DistillConfig, ExportConfig, FinetuneConfig, PruneConfig,
                             QuantizeConfig, TrimVocabConfig, to_dict)
from edgebert.errors import UserError
from edgebert.formats import FORMATS
from edgebert.stages import STAGES
from edgebert.targets import TARGETS


@dataclass
class Step:
    title: str
    out: Path
    run: object  # () -> Path
    config: object = None
    """The stage's config where the step runs one (what the plan decided, for reading)."""


def plan(recipe: Recipe, run: Path, log) -> list[Step]:
    """The recipe's stages, in order, each with its output directory."""
    from edgebert.data.tasks import task_kind
    from edgebert.modeling import non_wordpiece
    from edgebert.sources import resolve_model

    steps: list[Step] = []
    paths = {"teacher": run / "teacher"}
    teacher = recipe.teacher
    other = non_wordpiece(resolve_model(teacher.model))
    wordpiece = other is None
    if other:
        log(f"{teacher.model}: a {other} tokenizer; vocabulary trimming and the exports "
            f"with the tokenizer inside take WordPiece only, so they are skipped")

    if teacher.finetuned:
        steps.append(Step(f"copy the fine-tuned teacher {teacher.model}", paths["teacher"],
                          lambda: _copy_teacher(teacher.model, paths["teacher"], log)))
    else:
        cfg = FinetuneConfig(model=teacher.model, out=str(paths["teacher"]), task=recipe.task,
                             **stage_options(teacher, FinetuneConfig))
        steps.append(Step(f"fine-tune the teacher from {teacher.model}", paths["teacher"],
                          _call("finetune", cfg, log)))
    kind_name = task_kind(recipe.task) or _trained_kind(paths["teacher"])

    def models(chain: Recipe) -> None:  # its students, then its pruning steps
        for s in chain.students:
            paths[s.name] = run / s.name
            cfg = DistillConfig(teacher=str(paths["teacher"]), out=str(paths[s.name]),
                                **stage_options(s, DistillConfig))
            shape = f"layers {s.layers}" if s.layers else "every other layer"
            steps.append(Step(f"distil {s.name} ({shape})", paths[s.name],
                              _call("distill", cfg, log)))
        for p in chain.prune:
            parent = chain.parent(p.name)
            paths[p.name] = run / p.name
            options = stage_options(p, PruneConfig)
            if options["heads"] and kind_name in recipe.keep_heads_for:
                options["heads"] = 0.0
                log(f"{p.name}: every attention head kept ({kind_name} is in the recipe's "
                    f"keep_heads_for)")
            cfg = PruneConfig(model=str(paths[parent]), out=str(paths[p.name]),
                              teacher=str(paths["teacher"]) if p.recover == "distill" else None,
                              **options)
            steps.append(Step(f"prune {parent} into {p.name}", paths[p.name],
                              _call("prune", cfg, log), cfg))

    models(recipe)

    def deployable(name: str | None) -> Path:
        name = name or recipe.last_model()
        if not recipe.trim_vocab or not wordpiece or name == "teacher":
            return paths[name]
        trimmed = run / f"{name}_trimmed"
        if trimmed not in {s.out for s in steps}:
            cfg = TrimVocabConfig(model=str(paths[name]), out=str(trimmed),
                                  min_count=recipe.trim_min_count)
            steps.append(Step(f"trim the vocabulary of {name}", trimmed,
                              _call("trim-vocab", cfg, log)))
        return trimmed

    from edgebert.targets import native_target

    targets = [native_target() if q.target == "native" else q.target for q in recipe.quantize]
    int8 = {}  # recipe name (int8/<target as written>) -> directory

    def quantize(q, target: str, src: Path, out: Path) -> None:
        if out in {s.out for s in steps}:
            return  # the teacher, as both chains' fallback
        runtime = TARGETS[target].runtime
        if missing_runtime(runtime, log, f"INT8 for {target}"):
            return
        cfg = QuantizeConfig(model=str(src), out=str(out), target=target,
                             **stage_options(q, QuantizeConfig))
        how = "static (NNCF)" if runtime == "openvino" else q.mode
        steps.append(Step(f"INT8 {how} for {target} from {src.name}", out,
                          _quantize_within_budget(cfg, paths["teacher"],
                                                  recipe.max_accuracy_drop, log)))

    # one directory per target; the mode joins the name only when a target repeats
    names = [t if targets.count(t) == 1 else f"{t}-{q.mode}"
             for q, t in zip(recipe.quantize, targets)]
    for q, target, name in zip(recipe.quantize, targets, names):
        out = run / "int8" / name
        int8.setdefault(f"int8/{q.target}", out)
        quantize(q, target, deployable(q.model), out)

    def int8_of(model: str) -> None:  # the recipe's INT8 steps of its last model, for `model`
        for q, target, name in zip(recipe.quantize, targets, names):
            if q.model in (None, recipe.last_model()):
                quantize(q, target, deployable(model), run / "int8" / f"{name}-{model}")

    earlier = fallback_model(recipe, run, deployable(None), log) if recipe.fallback else None
    if earlier:
        int8_of(earlier)
    deep = deeper_chain(recipe, run, log)
    if deep:
        models(deep)
        int8_of(deep.last_model())
        earlier = fallback_model(deep, run, deployable(deep.last_model()), log) \
            if recipe.fallback else None
        if earlier:
            int8_of(earlier)
    from edgebert.data.tasks import task_kind
    from edgebert.kinds import kind

    name = task_kind(recipe.task)
    for e in recipe.export:
        if e.with_tokenizer and name and kind(name).text_graph is None:
            log(f"skipping the {e.format} export with the tokenizer inside: {name} tasks have "
                f"no one-file export (export --with-tokenizer refuses them)")
            continue
        if e.with_tokenizer and not wordpiece:
            continue  # said above
        if missing_runtime(FORMATS[e.format].runtime, log, f"the {e.format} export"):
            continue
        src = int8[e.model] if e.model in int8 else deployable(e.model)
        out = run / "export" / (e.format + ("-text" if e.with_tokenizer else ""))
        cfg = ExportConfig(model=str(src), out=str(out), **stage_options(e, ExportConfig))
        what = f"{e.format} with the tokenizer inside" if e.with_tokenizer else e.format
        steps.append(Step(f"export {src.name} to {what}", out,
                          _call("export", cfg, log)))
    if recipe.bench.enabled:
        steps.append(Step("measure latency (interleaved, one process per turn)",
                          run / "bench" / "latency.json", lambda: _bench(recipe, run, steps, log)))
    return steps


RUNTIME_PACKAGES = {"openvino": ("openvino", "nncf")}
"""What a runtime's steps need beyond the cli install (`edgebert[openvino]`)."""


def missing_runtime(runtime: str, log, what: str) -> bool:
    """Whether a step's runtime is not installed; says once that the step is skipped (the
    chain runs on `edgebert[cli]` without OpenVINO)."""
    import importlib.util

    missing = [p for p in RUNTIME_PACKAGES.get(runtime, ()) if importlib.util.find_spec(p) is None]
    if missing:
        log(f"skipping {what}: {' and '.join(missing)} not installed (pip install "
            f"'edgebert[{runtime}]')")
    return bool(missing)


def _call(stage: str, cfg, log):
    """Run a stage when the step comes (torch loads only then); an unfinished output is
    resumed, which is every stage's default."""
    return lambda: STAGES[stage].run(cfg, log=log)


MIN_GUARD_POINTS = 0.25
NOISE_EXAMPLES = 3
"""The least dev budget the INT8 guard gets, even where the model it quantizes is already
at or past the chain's budget: 0.25 points, and never less than 3 dev examples' worth
(a smaller drop is not told from noise; on trec-6's 538 dev examples a 0.25 floor made
the guard keep 8 nodes in FP32, embeddings included, for a 2-example difference)."""


def guard_floor(dev_examples: int = 0) -> float:
    """The least dev points an INT8 guard gets: MIN_GUARD_POINTS, or NOISE_EXAMPLES of
    `dev_examples` where that is more.

    >>> guard_floor(), round(guard_floor(538), 2)
    (0.25, 0.56)
    """
    return max(MIN_GUARD_POINTS, 100.0 * NOISE_EXAMPLES / dev_examples if dev_examples else 0)


def guard_budget(lost: float, budget: float, max_drop: float, dev_examples: int = 0) -> float:
    """Dev points the INT8 guard may lose, when the model already lost `lost` of the chain's
    `budget` (at most the quantize entry's own `max_drop`; at least guard_floor).

    >>> guard_budget(0.7, 1.0, 1.0), guard_budget(0.0, 1.0, 0.5), guard_budget(1.4, 1.0, 1.0)
    (0.3, 0.5, 0.25)
    >>> guard_budget(0.93, 1.0, 1.0, dev_examples=538)
    0.56
    """
    return round(min(max_drop, max(guard_floor(dev_examples), budget - lost)), 2)


def _dev_lost(teacher: Path, model: Path) -> float:
    """Dev points `model` is under the teacher (never negative)."""
    from edgebert.quantize.stage import dev_points

    return max(0.0, dev_points(teacher) - dev_points(model))


def _floor(run: Path, budget: float) -> float:
    """The least of the budget a model must leave its INT8 guard: guard_floor of the
    teacher's dev examples, at most the budget (a floor over the budget, on a small dev set
    like wnut-ner's 1.26 points, asks a model to have lost nothing on dev, not the
    impossible)."""
    examples = artifact.read_json(run / "teacher" / "metrics.json")["dev"].get("examples", 0)
    return min(budget, guard_floor(examples))


DEEP = "_deep"
"""Suffix of the deeper chain's artifacts (see deeper_chain)."""


def _trained_kind(teacher: Path) -> str | None:
    """The task kind the finished teacher was trained on (a local task without --kind is
    only known once loaded; the plan is made again after every step)."""
    if not artifact.is_complete(teacher):
        return None
    return artifact.read_json(teacher / "stage.json").get("task", {}).get("kind")


def deeper_chain(recipe: Recipe, run: Path, log) -> Recipe | None:
    """The chain again from a student one teacher layer deeper (Recipe.deeper), as a recipe
    of its own (student and pruning steps named <name>_deep), when the student the last
    model descends from has spent the budget on dev: it leaves the INT8 guard less than its
    floor, so no pruning or INT8 after it can be within the budget. None when it leaves
    room, is not made yet, or cannot grow (it has every teacher layer, or is a narrow
    student with fresh weights)."""
    from dataclasses import replace

    from edgebert.distill.students import every_other

    if not recipe.deeper or recipe.last_model() == "teacher":
        return None
    lineage = recipe.lineage(recipe.last_model())
    root, teacher = lineage[-1], run / "teacher"
    if not (artifact.is_complete(teacher) and artifact.is_complete(run / root)):
        return None
    lost = _dev_lost(teacher, run / root)
    if recipe.max_accuracy_drop - lost >= _floor(run, recipe.max_accuracy_drop):
        return None
    student = next(s for s in recipe.students if s.name == root)
    if student.hidden_size or student.heads or student.ffn:
        log(f"{root} is {lost:.2f} dev points under the teacher; a narrow student is not "
            f"made deeper (no deeper chain)")
        return None
    from transformers import AutoConfig

    n = AutoConfig.from_pretrained(str(teacher)).num_hidden_layers
    layers = list(student.layers or every_other(n))
    left = [i for i in range(n) if i not in layers]
    if not left:
        return None
    layers = sorted(layers + left[-1:])
    named = {name: name + DEEP for name in lineage}
    log(f"{root} is {lost:.2f} dev points under the teacher, more than the "
        f"{recipe.max_accuracy_drop:g}-point budget leaves for INT8: the chain again from "
        f"{named[root]}, teacher layers {layers}")
    return replace(recipe, students=[replace(student, name=named[root], layers=layers)],
                   prune=[replace(p, name=named[p.name], model=named.get(p.model, p.model))
                          for p in recipe.prune if p.name in named],
                   quantize=[], export=[], deeper=False)


def fallback_model(recipe: Recipe, run: Path, last: Path, log) -> str | None:
    """The last model of the chain before `last` (what the recipe's INT8 steps quantize),
    the teacher last, that leaves the INT8 guard at least its floor of the budget on dev
    (at most the budget), when `last` does not; None when `last` leaves it or is not made.

    The deepest pruning step is where the budget runs out on a task whose data cannot
    recover it (vader-amazon: its first pruning step lost 1.2 test points more than its
    student; wnut-ner: its second, 2.9): its INT8 model cannot be within the budget, and an
    INT8 model of the earlier one can, a little slower.
    """
    teacher = run / "teacher"
    if recipe.last_model() == "teacher" or not (artifact.is_complete(teacher)
                                                  and artifact.is_complete(last)):
        return None
    budget = recipe.max_accuracy_drop
    floor = _floor(run, budget)
    lost = _dev_lost(teacher, last)
    if budget - lost >= floor:
        return None
    # the teacher last: its INT8 model is the slowest candidate, and within the budget
    # wherever INT8 alone keeps it (trec-50's student was 2.8 test points under its teacher);
    # it loses nothing against itself, so there always is a fallback
    for name in recipe.lineage(recipe.last_model())[1:] + ["teacher"]:
        if artifact.is_complete(run / name):
            its = _dev_lost(teacher, run / name)
            if budget - its >= floor:
                log(f"{last.name} is {lost:.2f} dev points under the teacher, leaving INT8 "
                    f"less than {floor:.2f} of the {budget:g}-point budget: {name} "
                    f"({its:.2f} under) is quantized too (fallback)")
                return name
    return None  # not reached: the teacher loses nothing against itself


def _quantize_within_budget(cfg: QuantizeConfig, teacher: Path, budget: float, log):
    """The quantize stage, its guard given what the chain's budget leaves: the budget minus
    what the model to quantize already lost against the teacher on dev (never more than the
    recipe's own max_drop). A student 0.7 dev points under its teacher gets 0.3 for INT8,
    so the INT8 artifact stays within the budget instead of adding a full point to the
    student's loss."""
    def run() -> Path:
        from dataclasses import replace

        lost = _dev_lost(teacher, Path(cfg.model))
        examples = artifact.read_json(teacher / "metrics.json")["dev"].get("examples", 0)
        max_drop = guard_budget(lost, budget, cfg.max_drop, examples)
        if max_drop < cfg.max_drop:
            log(f"INT8 guard: {max_drop:.2f} dev points ({cfg.model} is already {lost:.2f} "
                f"under the teacher; the chain's budget is {budget:g})")
        return STAGES["quantize"].run(replace(cfg, max_drop=max_drop), log=log)
    return run


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


def _bench(recipe: Recipe, run: Path, steps: list[Step], log) -> Path:
    """Interleaved latency of every artifact this machine runs natively: padded inputs
    (recipe.bench batch x seq), then the task's test texts one at a time (bench.texts), in
    one file."""
    from edgebert.bench.run import bench, task_texts

    out = run / "bench" / "latency.json"
    if out.exists():
        log(f"{out} is already measured; skipping")
        return out
    models = [str(s.out) for s in steps if s.out.is_dir() and not _emulated_only(s.out)]
    b = recipe.bench
    data = bench(models, b.batch, b.seq, b.threads, b.warmup, b.runs, b.rounds, log=log)
    texts = task_texts(run / "teacher", b.texts, run / "bench" / "test_texts.txt") \
        if b.texts else None
    if texts:
        log(f"the task's test texts, one at a time ({b.texts} of them):")
        data["results"] += bench(models, [1], [1], b.threads, b.warmup // 2, b.texts, b.rounds,
                                 log=log, texts=str(texts))["results"]
    elif b.texts:
        log("the task's examples are not single texts: padded inputs only")
    out.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_json(out, data)
    return out


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


def _compress(recipe: Recipe, run: Path, log) -> dict:
    import yaml

    from edgebert.report.render import write_report

    run.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(to_dict(recipe), sort_keys=False)
    saved = run / "recipe.yaml"
    if saved.exists() and saved.read_text() != resolved:
        raise UserError(f"--out {run}: holds a run of another recipe ({saved} differs); "
                        f"choose another --out, or delete {run} to start over")
    if not saved.exists():
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
        steps = plan(recipe, run, once)
        todo = None
        for i, step in enumerate(steps, 1):
            done = step.out.is_file() if step.out.suffix == ".json" else \
                artifact.is_complete(step.out)
            if not done:
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
        t0 = time.monotonic()
        step.run()
        seconds = time.monotonic() - t0
        key = str(step.out.relative_to(run))
        timings[key] = round(timings.get(key, 0.0) + seconds, 1)
        artifact.write_json(timings_path, timings)
        log(f"[{i}/{len(steps)}] finished in {seconds:.0f} s")
    report = write_report(run, "teacher", budget=recipe.max_accuracy_drop,
                          workload=recipe.bench.workload)
    report["stage_seconds"] = timings
    return report
