"""The chain's accuracy budget (`Recipe.max_accuracy_drop`, points against the teacher on
dev): what each INT8 guard may still lose, and where a chain that has spent it falls back
to an earlier model or grows a deeper student.

The policy (guard_floor, guard_budget, floor, deeper_chain, fallback_model) reads no
file: `plan` hands it what `compress.run.survey` found. `dev_lost` and
`quantize_within_budget` read the finished artifacts when a step runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgebert import artifact
from edgebert.compress.recipe import Recipe

if TYPE_CHECKING:
    from edgebert.compress.plan import Found
    from edgebert.stages.quantize.config import QuantizeConfig

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


def floor(budget: float, dev_examples: int) -> float:
    """The least of the budget a model must leave its INT8 guard: guard_floor of the
    teacher's dev examples, at most the budget (a floor over the budget, on a small dev set
    like wnut-ner's 1.26 points, asks a model to have lost nothing on dev, not the
    impossible).

    >>> round(floor(1.0, 538), 2), floor(1.0, 200)
    (0.56, 1.0)
    """
    return min(budget, guard_floor(dev_examples))


DEEP = "_deep"
"""Suffix of the deeper chain's artifacts (see deeper_chain)."""


def student_spent(recipe: Recipe, found: Found) -> tuple[str, float] | None:
    """(the student the last model descends from, its dev points under the teacher) when it
    has spent the budget: it leaves the INT8 guard less than its floor, so no pruning or
    INT8 after it can be within the budget. None when it leaves room or is not made yet."""
    if recipe.last_model() == "teacher":
        return None
    root = recipe.lineage(recipe.last_model())[-1]
    if "teacher" not in found.dev_lost or root not in found.dev_lost:
        return None
    lost, budget = found.dev_lost[root], recipe.max_accuracy_drop
    if budget - lost >= floor(budget, found.dev_examples):
        return None
    return root, lost


def small_task(recipe: Recipe, found: Found) -> bool:
    """Whether the finished teacher trained on fewer examples than `teacher_int8_below`,
    in a chain that compresses it (its last model not the teacher): a dev split this small
    may not see what a student lost."""
    return (0 < found.train_examples < recipe.teacher_int8_below
            and recipe.last_model() != "teacher")


def learned_prune(recipe: Recipe, found: Found, log) -> bool:
    """Whether the chain also prunes the teacher by learned masks (Recipe.learned_prune):
    where the student has spent the budget, as for the deeper chain, and on a small task,
    whatever its dev split says of the student."""
    if not recipe.learned_prune.enabled:
        return False
    spent, small = student_spent(recipe, found), small_task(recipe, found)
    if spent:
        why = f"{spent[0]} is {spent[1]:.2f} dev points under the teacher"
    elif small:
        why = f"{found.train_examples:,} training examples (under {recipe.teacher_int8_below:,})"
    else:
        return False
    log(f"{why}: the teacher is also pruned by learned masks to "
        f"{recipe.learned_prune.sparsity:.0%} sparsity (learned)")
    return True


def deeper_chain(recipe: Recipe, found: Found, log) -> Recipe | None:
    """The chain again from a student one teacher layer deeper (Recipe.deeper), as a recipe
    of its own (student and pruning steps named <name>_deep), when the student the last
    model descends from has spent the budget on dev: it leaves the INT8 guard less than its
    floor, so no pruning or INT8 after it can be within the budget. None when it leaves
    room, is not made yet, or cannot grow (it has every teacher layer, or is a narrow
    student with fresh weights)."""
    if not recipe.deeper:
        return None
    spent = student_spent(recipe, found)
    if spent is None:
        return None
    root, lost = spent
    lineage, budget = recipe.lineage(recipe.last_model()), recipe.max_accuracy_drop
    student = next(s for s in recipe.students if s.name == root)
    if student.hidden_size or student.heads or student.ffn:
        log(f"{root} is {lost:.2f} dev points under the teacher; a narrow student is not "
            f"made deeper (no deeper chain)")
        return None
    from edgebert.stages.distill.students import every_other

    n = found.teacher_layers
    layers = list(student.layers or every_other(n))
    left = [i for i in range(n) if i not in layers]
    if not left:
        return None
    layers = sorted(layers + left[-1:])
    named = {name: name + DEEP for name in lineage}
    log(f"{root} is {lost:.2f} dev points under the teacher, more than the "
        f"{budget:g}-point budget leaves for INT8: the chain again from "
        f"{named[root]}, teacher layers {layers}")
    return replace(recipe, students=[replace(student, name=named[root], layers=layers)],
                   prune=[replace(p, name=named[p.name], model=named.get(p.model, p.model))
                          for p in recipe.prune if p.name in named],
                   quantize=[], export=[], deeper=False)


def fallback_model(recipe: Recipe, last: str, found: Found, log) -> str | None:
    """The last model of the chain before `last` (the directory the recipe's INT8 steps
    quantize), the teacher last, that leaves the INT8 guard at least its floor of the
    budget on dev (at most the budget), when `last` does not; None when `last` leaves it
    or is not made.

    The deepest pruning step is where the budget runs out on a task whose data cannot
    recover it (vader-amazon: its first pruning step lost 1.2 test points more than its
    student; wnut-ner: its second, 2.9): its INT8 model cannot be within the budget, and an
    INT8 model of the earlier one can, a little slower.
    """
    lost = found.dev_lost
    if recipe.last_model() == "teacher" or "teacher" not in lost or last not in lost:
        return None
    budget = recipe.max_accuracy_drop
    least = floor(budget, found.dev_examples)
    if budget - lost[last] >= least:
        return None
    # the teacher last: its INT8 model is the slowest candidate, and within the budget
    # wherever INT8 alone keeps it (trec-50's student was 2.8 test points under its teacher);
    # it loses nothing against itself, so there always is a fallback
    for name in recipe.lineage(recipe.last_model())[1:] + ["teacher"]:
        if name in lost and budget - lost[name] >= least:
            log(f"{last} is {lost[last]:.2f} dev points under the teacher, leaving INT8 "
                f"less than {least:.2f} of the {budget:g}-point budget: {name} "
                f"({lost[name]:.2f} under) is quantized too (fallback)")
            return name
    return None  # not reached: the teacher loses nothing against itself


def dev_lost(teacher: Path, model: Path) -> float:
    """Dev points the finished `model` is under the finished `teacher` (never negative)."""
    from edgebert.stages.quantize.stage import dev_points

    return max(0.0, dev_points(teacher) - dev_points(model))


def dev_examples(teacher: Path) -> int:
    """The finished teacher's dev examples (0 where its metrics do not say)."""
    return artifact.read_json(teacher / "metrics.json")["dev"].get("examples", 0)


def within_budget(cfg, teacher: Path, budget: float, log):
    """An INT8 step's config (quantize, or an ExecuTorch INT8 export) with its guard given
    what the chain's budget leaves: the budget minus what the model to quantize already
    lost against the teacher on dev (never more than the step's own max_drop). A student
    0.7 dev points under its teacher gets 0.3 for INT8, so the INT8 artifact stays within
    the budget instead of adding a full point to the student's loss."""
    lost = dev_lost(teacher, Path(cfg.model))
    max_drop = guard_budget(lost, budget, cfg.max_drop, dev_examples(teacher))
    if max_drop < cfg.max_drop:
        log(f"INT8 guard: {max_drop:.2f} dev points ({cfg.model} is already {lost:.2f} "
            f"under the teacher; the chain's budget is {budget:g})")
    return replace(cfg, max_drop=max_drop)


def quantize_within_budget(cfg: QuantizeConfig, teacher: Path, budget: float, log,
                           made: list[Path] = ()) -> Path:
    """The quantize stage `within_budget`. Where one of the INT8 artifacts already `made` is
    this one's graph for another target (x86-vnni's for arm64), it is taken instead of
    quantizing again."""
    from edgebert.stages import STAGES
    from edgebert.stages.quantize.ort import twin_mismatch

    cfg = within_budget(cfg, teacher, budget, log)
    twin = next((m for m in made if cfg.engine == "ort" and twin_mismatch(cfg, m) is None),
                None)
    return STAGES["quantize"].run(replace(cfg, same_graph_as=twin and str(twin)), log=log)
