"""Recipes: one YAML file that names every stage of `edgebert compress`.

A recipe is read into the dataclasses below; every field has a default, so a
recipe names only what it changes. Unknown keys and wrong types are errors
that name the key. `--set a.b.c=value` overrides a field of the resolved
recipe (the value is read as YAML: `--set students.0.layers=[0,2,4]`).

Artifacts are named: `teacher`, each student's `name`, each pruning's `name`.
Quantization and export take a `model` by that name (default: the last model
the recipe makes); with `trim_vocab` they get its vocabulary-trimmed copy.

Each entry is derived from its stage's config (`_entry`): the same fields, defaults
and checks, so an option is declared once, in its stage's config
(`edgebert/stages/<name>/config.py`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgebert.config import BenchConfig, TaskConfig, TrainConfig, check, choices, to_dict
from edgebert.errors import UserError
from edgebert.kinds import KINDS
from edgebert.stages.distill.config import DistillConfig
from edgebert.stages.export.config import ExportConfig
from edgebert.stages.prune.config import LearnedPruneConfig, PruneConfig
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.teacher.config import TEACHER_HEAD_LR, FinetuneConfig
from edgebert.stages.trim.config import TrimVocabConfig
from edgebert.targets import TARGETS

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


LEARNED = "learned"
"""The artifact of the learned pruning from the teacher (Recipe.learned_prune)."""

RUN_SUPPLIED = {"model", "out", "teacher", "task", "target"}
"""Stage-config fields `compress` fills from the run (paths, the run's task and teacher,
the resolved target), not from a recipe entry."""


class _Entry:
    """A recipe entry runs its stage config's own checks on what it sets: the config is
    built from it, the run's teacher standing in where the config takes one (a pruning
    that recovers by distillation is always given it)."""

    stage_config: typing.ClassVar[type]

    def __post_init__(self):
        config = self.stage_config
        teacher = {"teacher": "teacher"} if "teacher" in config.__dataclass_fields__ else {}
        config(**stage_options(self, config), **teacher)


def _one_epoch(lr: float, head_lr: float | None = None):
    """Default training of a recipe stage: one epoch, dev every 100 steps, patience 4."""
    return field(default_factory=lambda: TrainConfig(epochs=1.0, lr=lr, head_lr=head_lr,
                                                     eval_every=100, patience=4))


def _entry(name: str, stage: type, own: list[tuple] = (), skip: set[str] = frozenset(),
           **defaults):
    """A recipe entry derived from a stage's config: its `own` fields (artifact names, ...),
    then every field of the config except those the run supplies and `skip`, with the
    config's types, defaults and checks (`defaults` replace some: recipes train for one
    epoch). An option added to a stage reaches recipes with nothing to write."""
    taken = {f[0] for f in own} | RUN_SUPPLIED | set(skip)
    fields = list(own)
    for f in dataclasses.fields(stage):
        if f.name in taken:
            continue
        if f.name in defaults:
            spec = defaults[f.name]
        elif f.default_factory is not dataclasses.MISSING:
            spec = field(default_factory=f.default_factory)
        else:
            spec = field(default=f.default)
        fields.append((f.name, f.type, spec))
    cls = dataclasses.make_dataclass(name, fields, bases=(_Entry,),
                                     namespace={"stage_config": stage})
    cls.__module__ = stage.__module__  # its string annotations name the config's types
    cls.__doc__ = f"A recipe entry for {stage.__name__}: {(stage.__doc__ or '').strip()}"
    return cls


def _name(default: str) -> tuple:
    return ("name", "str", field(default=default))


def _model(default=None) -> tuple:
    """Which artifact of the run a stage reads, by name."""
    return ("model", "str | None" if default is None else "str", field(default=default))


TeacherRecipe = _entry(
    "TeacherRecipe", FinetuneConfig,
    own=[_model("minilm-l6"),  # a checkpoint, or with finetuned: true a finetune artifact
         ("finetuned", "bool", field(default=False))],  # copy it into the run, do not train
    train=_one_epoch(5e-5, head_lr=TEACHER_HEAD_LR))
StudentRecipe = _entry(
    "StudentRecipe", DistillConfig, own=[_name("student")],
    # general distillation (corpus, max_length) and a pre-distilled student are `edgebert
    # distill` runs of their own; a chain distils from its teacher on its task
    skip={"student", "corpus", "max_length"}, train=_one_epoch(1e-4))
PruneRecipe = _entry("PruneRecipe", PruneConfig, own=[_name("pruned"), _model()],
                     train=_one_epoch(1e-4))
LearnedPruneRecipe = _entry(
    "LearnedPruneRecipe", LearnedPruneConfig,
    # used only where the student spent the budget (see Recipe.learned_prune)
    own=[("enabled", "bool", field(default=True))])
QuantizeRecipe = _entry(
    "QuantizeRecipe", QuantizeConfig,
    # native: this CPU's preset, resolved when the run starts; written to int8/<target>
    own=[("target", "str", field(default="native")), _model()])
ExportRecipe = _entry("ExportRecipe", ExportConfig, own=[_model()])  # model: or int8/<target>
TrimVocabRecipe = _entry("TrimVocabRecipe", TrimVocabConfig,
                         own=[("enabled", "bool", field(default=True))])


@dataclass
class BenchRecipe(BenchConfig):
    """compress's latency step: `edgebert bench`'s settings, and what compress adds."""

    enabled: bool = True
    """Measure latency of every artifact (arm64 ones excepted: emulation is not a device)."""
    texts: int = 200
    """Also time every artifact on this many of the task's test texts, one at a time at
    their own lengths, tokenizing included (what an app sends); 0: padded inputs only."""
    workload: Literal["texts", "padded"] = "texts"
    """What the recommendation is timed on: texts (above) or padded (batch x seq). The
    order of runtimes differs between them: OpenVINO pays for each new input shape, so
    on short real texts ONNX Runtime's INT8 may win where OpenVINO wins at 128 tokens."""


@dataclass
class Recipe:
    task: TaskConfig = field(default_factory=TaskConfig)
    teacher: TeacherRecipe = field(default_factory=TeacherRecipe)
    students: list[StudentRecipe] = field(default_factory=lambda: [StudentRecipe()])
    prune: list[PruneRecipe] = field(default_factory=list)
    trim_vocab: TrimVocabRecipe = field(default_factory=TrimVocabRecipe)
    """Trim each model's vocabulary to the task's training tokens before quantizing or
    exporting it (outputs on covered text unchanged; most of a small student is
    embeddings): `enabled`, and the trim-vocab stage's options (min_count, max_drop, ...)."""
    quantize: list[QuantizeRecipe] = field(default_factory=lambda: [QuantizeRecipe()])
    export: list[ExportRecipe] = field(default_factory=list)
    bench: BenchRecipe = field(default_factory=BenchRecipe)
    max_accuracy_drop: float = 1.0
    """The accuracy budget: points of the task's metric an artifact may lose against the
    teacher. The fastest artifact within it is recommended per architecture (x86, arm64),
    across runtimes, on bench.workload; each INT8 guard gets what its model left of it."""
    keep_heads_for: list[str] = field(default_factory=list)
    """Task kinds whose pruning steps keep every attention head: a step's `heads` counts as
    0 for them (its FFN pruning stays), decided from the task's kind when the run plans."""
    deeper: bool = True
    """When the student the pruning starts from has itself spent the budget on dev (it
    leaves the INT8 guard less than its floor), distil a second one from its teacher layers
    plus the teacher's top layer not among them (<student>_deep), prune it by the same
    steps (<step>_deep), then trim and quantize its last model (int8/<target>-<model>_deep).
    trec-50 (50 classes): the 3-layer student of the 6-layer MiniLM lost 2.79 test points,
    a 4-layer one 0.74."""
    learned_prune: LearnedPruneRecipe = field(default_factory=LearnedPruneRecipe)
    """Where the student has spent the budget on dev (as for `deeper`), and on a small task
    (`teacher_int8_below`) whatever dev says, also prune the teacher by learned masks
    (`edgebert prune-learned`: CoFi) into `learned`, then trim and quantize it
    (int8/<target>-learned); the report recommends the fastest artifact within the budget,
    whichever chain made it. `enabled`, and the stage's options (sparsity, mask_lr, ...).
    Otherwise the plan is unchanged. The default recipe asks for 30 % sparsity: on trec-50
    that INT8 model was within the budget at 5.9x on its texts, where the students were not,
    and 60 % lost 3.9 test points (docs/guides/learned-pruning.md)."""
    fallback: bool = True
    """When the last model has spent the budget on dev (it leaves the INT8 guard less than
    its floor), also trim and quantize the last model before it that leaves room (the
    teacher last), into int8/<target>-<model>: every target then has an INT8 candidate
    that the dev split says can be within the budget."""
    teacher_int8_below: int = 10000
    """Tasks with fewer training examples than this also get the teacher's own INT8
    (int8/<target>-teacher) and its learned pruning (`learned_prune`), whatever dev says of
    the students (0: never). Their dev splits
    are too small to see what a student lost: on trec-50 (4,304 questions, 538 dev) the
    student matched the teacher on dev and was 3.35 points under it on test, and every
    compressed model of the chain missed the budget; the teacher's INT8 was within it
    (+0.74 test points, 2.6x)."""

    def __post_init__(self):
        names = ["teacher"] + [s.name for s in self.students] + [p.name for p in self.prune]
        dup = sorted({n for n in names if names.count(n) > 1})
        check(not dup, "recipe", f"artifact names repeat: {', '.join(dup)}")
        for n in names:
            check(n.replace("-", "_").isidentifier()
                  and n not in ("int8", "export", "bench", LEARNED),
                  "recipe", f"artifact name '{n}' must be a plain word (letters, digits, _ -)")
        check(self.max_accuracy_drop >= 0, "max_accuracy_drop", "must be >= 0")
        for i, p in enumerate(self.prune):
            known = names[: len(self.students) + 1 + i]
            check(p.model is None or p.model in known, f"prune.{i}.model",
                  f"'{p.model}' is not an earlier artifact ({', '.join(known)})")
        for k in self.keep_heads_for:
            check(k in KINDS, "keep_heads_for", f"'{k}' is not a task kind "
                  f"({', '.join(KINDS)})")
        int8 = [f"int8/{q.target}" for q in self.quantize]
        for key, items in (("quantize", self.quantize), ("export", self.export)):
            for i, q in enumerate(items):
                known = names + (int8 if key == "export" else [])
                check(q.model is None or q.model in known, f"{key}.{i}.model",
                      f"'{q.model}' is not an artifact of the recipe ({', '.join(known)})")
        for i, e in enumerate(self.export):
            check(e.format != "torchscript" or not (e.model or "").startswith("int8/"),
                  f"export.{i}.model", "TorchScript needs PyTorch weights, not an INT8 model")
        for i, q in enumerate(self.quantize):
            check(q.target in ("native", *TARGETS), f"quantize.{i}.target",
                  f"must be native or one of {', '.join(TARGETS)}, got '{q.target}'")

    def last_model(self) -> str:
        if self.prune:
            return self.prune[-1].name
        return self.students[-1].name if self.students else "teacher"

    def parent(self, name: str) -> str:
        """The model `name` was made from (students distil from the teacher)."""
        for p in self.prune:
            if p.name == name:
                return p.model or (self.students[-1].name if self.students else "teacher")
        return "teacher"

    def lineage(self, name: str) -> list[str]:
        """`name` and the models it was made from, newest first, the teacher left out.

        >>> steps = [PruneRecipe(name="a", ffn=0.5), PruneRecipe(name="b", model="a", ffn=0.5)]
        >>> Recipe(prune=steps).lineage("b")
        ['b', 'a', 'student']
        """
        out = []
        while name != "teacher":
            out.append(name)
            name = self.parent(name)
        return out


def stage_options(entry, config_cls) -> dict:
    """The options a recipe entry sets for its stage: every field the entry shares with the
    stage's config, except what the run supplies. A field added to both flows through."""
    mine = {f.name for f in dataclasses.fields(config_cls)} - RUN_SUPPLIED
    return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry) if f.name in mine}


def build(cls, data, where: str = ""):
    """`cls` from plain data (YAML), naming any unknown key or wrong type by its path."""
    hint = cls
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if data is None:
            return None
        hint = args[0]
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"recipe: {where or 'top level'} must be a mapping, got {data!r}")
        hints = typing.get_type_hints(hint)
        names = {f.name for f in dataclasses.fields(hint)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(f"recipe: unknown key(s) {', '.join(_join(where, k) for k in unknown)};"
                            f" known here: {', '.join(sorted(names))}")
        values = {k: build(hints[k], v, _join(where, k)) for k, v in data.items()}
        try:
            return hint(**values)
        except TypeError as err:
            raise UserError(f"recipe: {where or 'top level'}: {err}") from None
        except UserError as err:  # the stage config's own check: name the entry
            if not where:
                raise
            raise UserError(f"recipe: {where}: {err}") from None
    if origin is list:
        if not isinstance(data, list):
            raise UserError(f"recipe: {where} must be a list, got {data!r}")
        (item,) = typing.get_args(hint)
        return [build(item, v, f"{where}.{i}") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise UserError(f"recipe: {where} must be a mapping, got {data!r}")
        return {str(k): str(v) for k, v in data.items()}
    if choices(hint):  # a Literal: one of its values
        if data not in choices(hint):
            raise UserError(f"recipe: {where} must be one of {', '.join(choices(hint))}, "
                            f"got {data!r}")
        return data
    if hint is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if hint is str and isinstance(data, (int, float)) and not isinstance(data, bool):
        return str(data)
    if not isinstance(data, hint) or (hint is int and isinstance(data, bool)):
        raise UserError(f"recipe: {where} must be {hint.__name__}, got {data!r}")
    return data


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def override(data: dict, assignment: str) -> None:
    """Apply `a.b.0.c=value` to the resolved recipe dict; the path must exist."""
    import yaml

    if "=" not in assignment:
        raise UserError(f"--set {assignment}: expected KEY=VALUE, e.g. teacher.train.epochs=2")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise UserError(f"--set {key}: cannot read the value '{raw}' ({err})") from None
    node, parts = data, key.strip().split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"--set {key}: '{'.'.join(parts[:i])}' has {len(node)} entries; "
                                f"'{part}' is not one of 0..{len(node) - 1}")
            part = int(part)
        elif not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "nothing"
            raise UserError(f"--set {key}: unknown key '{'.'.join(parts[:i + 1])}'; "
                            f"known here: {known}")
        if last:
            node[part] = value
        else:
            node = node[part]


def load(path: str | None, sets: list[str] = ()) -> Recipe:
    """Read a recipe file (default: the packaged default), apply `--set`s, check it."""
    import yaml

    source = resolve(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{source}: cannot read the recipe ({err})") from None
    except yaml.YAMLError as err:
        raise UserError(f"{source}: not valid YAML ({err})") from None
    recipe = build(Recipe, _renamed(data, source))
    if sets:
        resolved = to_dict(recipe)
        for s in sets:
            override(resolved, s)
        recipe = build(Recipe, resolved)
    return recipe


def _renamed(data: dict, source: Path) -> dict:
    """`data` with the keys that were renamed written the new way, each said once: a recipe
    (or a run's recipe.yaml) written before still loads."""
    import warnings

    trim = data.get("trim_vocab")
    if isinstance(trim, bool):
        warnings.warn(f"{source}: trim_vocab: {str(trim).lower()} is now trim_vocab.enabled",
                      FutureWarning, stacklevel=3)
        data["trim_vocab"] = {"enabled": trim}
    if "trim_min_count" in data:
        warnings.warn(f"{source}: trim_min_count is now trim_vocab.min_count", FutureWarning,
                      stacklevel=3)
        entry = data.get("trim_vocab") if isinstance(data.get("trim_vocab"), dict) else {}
        data["trim_vocab"] = {**entry, "min_count": data.pop("trim_min_count")}
    return data


def resolve(path: str | None) -> Path:
    """A recipe file, or the name of a packaged one (default, tiny)."""
    if path is None:
        return RECIPES / "default.yaml"
    p = Path(path)
    if p.exists():
        return p
    packaged = RECIPES / f"{path}.yaml"
    if packaged.exists():
        return packaged
    names = ", ".join(sorted(f.stem for f in RECIPES.glob("*.yaml")))
    raise UserError(f"recipe {path}: no such file, and not a packaged recipe ({names})")
