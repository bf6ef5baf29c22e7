"""The steps of a `compress` run: the recipe's stages in order, each with its config and
the directory it writes.

`plan` is a pure function of the recipe, the run directory's path and `Found`, what the
run directory and this machine hold (read by `compress.run.survey`, passed in): it reads
no file, so the run loop makes it again after every step, and a test makes it from data.

    <run>/recipe.yaml        the resolved recipe (every default filled in)
    <run>/teacher/           fine-tuned teacher
    <run>/<student>/         distilled students, <run>/<pruned>/ pruned ones
    <run>/<name>_trimmed/    vocabulary-trimmed copies (trim_vocab.enabled)
    <run>/<name>_deep/       the chain again from a deeper student, where the student spent
                             the budget (Recipe.deeper)
    <run>/learned/           the teacher pruned by learned masks, there too
                             (Recipe.learned_prune)
    <run>/int8/<target>/     INT8 ONNX per target
    <run>/int8/<target>-<m>/ INT8 of an earlier model m, where the last one spent the budget
    <run>/export/<format>/   ONNX / ORT / TorchScript exports (<format>-text: tokenizer inside)
    <run>/bench/latency.json interleaved latency of every artifact (arm64 excepted)
    <run>/report.*           the report, with the recommended artifact per target
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from edgebert.compress.budget import deeper_chain, fallback_model, learned_prune, small_task
from edgebert.compress.recipe import LEARNED, BenchRecipe, Recipe, stage_options
from edgebert.formats import FORMATS
from edgebert.kinds import kind
from edgebert.stages.distill.config import DistillConfig
from edgebert.stages.export.config import ExportConfig
from edgebert.stages.prune.config import LearnedPruneConfig, PruneConfig
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.teacher.config import FinetuneConfig
from edgebert.stages.trim.config import TrimVocabConfig
from edgebert.targets import TARGETS

REFUSED = ".refused"
"""Beside an optional step's directory (the .pte export), why its stage refused it: the
plan skips the step (compress.run._optional_export)."""
COPY_TEACHER, BENCH = "copy-teacher", "bench"
"""The steps `compress` runs itself; every other step runs the stage of its name
(edgebert.stages.STAGES)."""


@dataclass(frozen=True)
class Step:
    """One step of the plan: what runs it on which config; the config names the directory
    (or file) it writes, `out`."""

    title: str
    stage: str
    """What runs it: a stage's name (STAGES), COPY_TEACHER or BENCH."""
    config: object
    """The stage's config; the copy's is the teacher's (its `model` the fine-tuned one);
    the bench's, `BenchStep`."""

    @property
    def out(self) -> Path:
        return Path(self.config.out)


@dataclass(frozen=True)
class BenchStep:
    """The config of compress's latency step: the recipe's bench settings, and its result."""

    settings: BenchRecipe
    out: str


@dataclass(frozen=True)
class Found:
    """What a plan depends on beyond the recipe: read from the run directory and this
    machine by the caller (`compress.run.survey`), never by `plan`."""

    native_target: str = "x86-avx2"
    """The target a recipe's `native` stands for on this machine."""
    tokenizer: str | None = None
    """The teacher's tokenizer type where it is not WordPiece (BPE, Unigram): vocabulary
    trimming and the exports with the tokenizer inside are then skipped."""
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per runtime, the packages it needs that are not installed: its steps are skipped."""
    kind: str | None = None
    """The task's kind: the recipe task's, else the finished teacher's (a local task
    without a kind is known once the teacher has loaded it)."""
    dev_lost: dict[str, float] = field(default_factory=dict)
    """Dev points each finished model of the run is under the teacher (never negative), by
    directory name: teacher, student, pruned_trimmed, ..."""
    dev_examples: int = 0
    """The finished teacher's dev examples (the INT8 guard's noise floor counts them)."""
    train_examples: int = 0
    """The finished teacher's training examples (Recipe.teacher_int8_below)."""
    teacher_layers: int | None = None
    """The finished teacher's encoder layers (what a deeper student may add)."""
    refused: frozenset[str] = frozenset()
    """Optional steps refused before, by directory relative to the run (export/executorch):
    skipped, with a line that says where the refusal is written."""


class Int8(NamedTuple):
    """One INT8 step of the recipe: its entry, the target it resolves to, and its directory
    name under int8/."""

    entry: object
    target: str
    name: str


def plan(recipe: Recipe, run: Path, found: Found, log=print) -> list[Step]:
    """The recipe's steps, in order, each with its output directory.

    >>> # [s.title for s in plan(load("tiny"), Path("runs/smoke"), Found())]
    """
    wordpiece = found.tokenizer is None
    if not wordpiece:
        log(f"{recipe.teacher.model}: a {found.tokenizer} tokenizer; vocabulary trimming and "
            f"the exports with the tokenizer inside take WordPiece only, so they are skipped")
    steps = [teacher_step(recipe, run)]
    steps += model_steps(recipe, recipe, run, found.kind, log)

    targets = [found.native_target if q.target == "native" else q.target
               for q in recipe.quantize]
    # one directory per target; the mode joins the name only when a target repeats
    jobs = [Int8(q, t, t if targets.count(t) == 1 else f"{t}-{q.mode}")
            for q, t in zip(recipe.quantize, targets)]
    int8 = {}  # recipe name (int8/<target as written>) -> directory
    for job in jobs:
        out = run / "int8" / job.name
        int8.setdefault(f"int8/{job.entry.target}", out)
        src = deployable(steps, recipe, run, job.entry.model, wordpiece)
        add_int8(steps, job, src, out, found, log)

    if recipe.fallback:
        last = deployable(steps, recipe, run, None, wordpiece)
        earlier = fallback_model(recipe, last.name, found, log)
        if earlier:
            int8_of(steps, recipe, run, jobs, earlier, found, wordpiece, log)
    if small_task(recipe, found):
        log(f"{found.train_examples:,} training examples (under {recipe.teacher_int8_below:,}):"
            f" the teacher is quantized too, a dev split this small may not see what the "
            f"students lost")
        int8_of(steps, recipe, run, jobs, "teacher", found, wordpiece, log)
    deep = deeper_chain(recipe, found, log)
    if deep:
        steps += model_steps(recipe, deep, run, found.kind, log)
        int8_of(steps, recipe, run, jobs, deep.last_model(), found, wordpiece, log)
        if recipe.fallback:
            last = deployable(steps, recipe, run, deep.last_model(), wordpiece)
            earlier = fallback_model(deep, last.name, found, log)
            if earlier:
                int8_of(steps, recipe, run, jobs, earlier, found, wordpiece, log)
    if learned_prune(recipe, found, log):
        out = run / LEARNED
        cfg = LearnedPruneConfig(model=str(run / "teacher"), teacher=str(run / "teacher"),
                                 out=str(out),
                                 **stage_options(recipe.learned_prune, LearnedPruneConfig))
        steps.append(Step(f"prune teacher by learned masks into {LEARNED} "
                          f"(sparsity {cfg.sparsity:g})", "prune-learned", cfg))
        int8_of(steps, recipe, run, jobs, LEARNED, found, wordpiece, log)

    for e in recipe.export:
        if e.with_tokenizer and found.kind and kind(found.kind).text_graph is None:
            log(f"skipping the {e.format} export with the tokenizer inside: {found.kind} tasks "
                f"have no one-file export (export --with-tokenizer refuses them)")
            continue
        if e.with_tokenizer and not wordpiece:
            continue  # said above
        if skipped(FORMATS[e.format].runtime, found, log, f"the {e.format} export"):
            continue
        src = int8[e.model] if e.model in int8 else deployable(steps, recipe, run, e.model,
                                                                 wordpiece)
        out = run / "export" / (e.format + ("-text" if e.with_tokenizer else ""))
        if str(out.relative_to(run)) in found.refused:
            log(f"skipping the {e.format} export: refused before "
                f"({out.name + REFUSED} beside it says why; delete it to try again)")
            continue
        cfg = ExportConfig(model=str(src), out=str(out), **stage_options(e, ExportConfig))
        what = f"{e.format} with the tokenizer inside" if e.with_tokenizer else \
            f"{e.format} INT8" if e.precision == "int8" else e.format
        steps.append(Step(f"export {src.name} to {what}", "export", cfg))
    if recipe.bench.enabled:
        steps.append(Step("measure latency (interleaved, one process per turn)", BENCH,
                          BenchStep(recipe.bench, str(run / "bench" / "latency.json"))))
    return steps


def teacher_step(recipe: Recipe, run: Path) -> Step:
    """Fine-tune the teacher, or copy a fine-tuned one (`teacher.finetuned`)."""
    teacher = recipe.teacher
    cfg = FinetuneConfig(model=teacher.model, out=str(run / "teacher"), task=recipe.task,
                         **stage_options(teacher, FinetuneConfig))
    if teacher.finetuned:
        return Step(f"copy the fine-tuned teacher {teacher.model}", COPY_TEACHER, cfg)
    return Step(f"fine-tune the teacher from {teacher.model}", "finetune", cfg)


def model_steps(recipe: Recipe, chain: Recipe, run: Path, kind_name: str | None,
                log) -> list[Step]:
    """`chain`'s students, then its pruning steps (`chain` is the recipe or its deeper
    chain; `recipe.keep_heads_for` decides the heads)."""
    steps = []
    for s in chain.students:
        cfg = DistillConfig(teacher=str(run / "teacher"), out=str(run / s.name),
                            **stage_options(s, DistillConfig))
        shape = f"layers {s.layers}" if s.layers else "every other layer"
        steps.append(Step(f"distil {s.name} ({shape})", "distill", cfg))
    for p in chain.prune:
        parent = chain.parent(p.name)
        options = stage_options(p, PruneConfig)
        if options["heads"] and kind_name in recipe.keep_heads_for:
            options["heads"] = 0.0
            log(f"{p.name}: every attention head kept ({kind_name} is in the recipe's "
                f"keep_heads_for)")
        cfg = PruneConfig(model=str(run / parent), out=str(run / p.name),
                          teacher=str(run / "teacher") if p.recover == "distill" else None,
                          **options)
        steps.append(Step(f"prune {parent} into {p.name}", "prune", cfg))
    return steps


def deployable(steps: list[Step], recipe: Recipe, run: Path, name: str | None,
               wordpiece: bool) -> Path:
    """The directory INT8 and export steps read for model `name` (default: the last one):
    its vocabulary-trimmed copy where the recipe trims, whose step joins `steps` once."""
    name = name or recipe.last_model()
    if not recipe.trim_vocab.enabled or not wordpiece or name == "teacher":
        return run / name
    trimmed = run / f"{name}_trimmed"
    if trimmed not in {s.out for s in steps}:
        cfg = TrimVocabConfig(model=str(run / name), out=str(trimmed),
                              **stage_options(recipe.trim_vocab, TrimVocabConfig))
        steps.append(Step(f"trim the vocabulary of {name}", "trim-vocab", cfg))
    return trimmed


def add_int8(steps: list[Step], job: Int8, src: Path, out: Path, found: Found, log) -> None:
    """The INT8 step of `job` from `src` into `out`, unless planned already (the teacher, as
    both chains' fallback) or its runtime is not installed."""
    if out in {s.out for s in steps}:
        return
    runtime = TARGETS[job.target].runtime
    if skipped(runtime, found, log, f"INT8 for {job.target}"):
        return
    cfg = QuantizeConfig(model=str(src), out=str(out), target=job.target,
                         **stage_options(job.entry, QuantizeConfig))
    how = "static (NNCF)" if runtime == "openvino" else job.entry.mode
    steps.append(Step(f"INT8 {how} for {job.target} from {src.name}", "quantize", cfg))


def int8_of(steps: list[Step], recipe: Recipe, run: Path, jobs: list[Int8], model: str,
            found: Found, wordpiece: bool, log) -> None:
    """The recipe's INT8 steps of its last model, for `model`: int8/<target>-<model>."""
    for job in jobs:
        if job.entry.model in (None, recipe.last_model()):
            src = deployable(steps, recipe, run, model, wordpiece)
            add_int8(steps, job, src, run / "int8" / f"{job.name}-{model}", found, log)


def skipped(runtime: str, found: Found, log, what: str) -> bool:
    """Whether a step's runtime is not installed; says that the step is skipped (the chain
    runs on `edgebert[cli]` without OpenVINO)."""
    missing = found.missing.get(runtime, ())
    if missing:
        log(f"skipping {what}: {' and '.join(missing)} not installed (pip install "
            f"'edgebert[{runtime}]')")
    return bool(missing)
