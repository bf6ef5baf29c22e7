"""Recipes: defaults filled in, unknown keys and bad values named, --set overrides."""

from __future__ import annotations

import pytest

from edgebert.compress.recipe import Recipe, load
from edgebert.config import to_dict
from edgebert.errors import UserError


def write(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


def test_packaged_recipes_resolve_with_every_default():
    default = load(None)
    assert default.teacher.model == "minilm-l6"
    assert [s.layers for s in default.students] == [[0, 2, 4]]
    assert default.prune[0].heads == 0.5 and default.prune[0].recover == "distill"
    assert {q.target for q in default.quantize} == {"native", "arm64", "openvino-int8"}
    assert {e.format for e in default.export} >= {"openvino", "ort"}
    assert default.teacher.train.warmup == 0.06  # a field the file does not name
    tiny = load("tiny")
    assert tiny.task.limit == 300 and tiny.teacher.train.max_steps == 8


# a recipe file and the error it must give: unknown keys, wrong types and values, YAML
# syntax, and references between artifacts, each named by its path in the recipe
BAD_RECIPES = [
    ("teacher:\n  trian: {epochs: 1}\n", r"teacher\.trian"),
    ("students:\n  - {name: s, layerz: [0]}\n", r"students\.0\.layerz"),
    ("teacher:\n  train: {epochs: many}\n", r"teacher\.train\.epochs must be float"),
    ("students: {name: s}\n", r"students must be a list"),
    ("teacher:\n  train: {epochs: 0}\n", r"--epochs: must be > 0"),
    ("teacher: [\n", r"not valid YAML"),
    ("prune:\n  - {name: p, model: nope, heads: 1}\n", r"prune\.0\.model: 'nope'"),
    ("students:\n  - {name: student}\n  - {name: student}\n", r"names repeat: student"),
    ("quantize:\n  - {target: x86}\n", r"quantize\.0\.target"),
    # each entry runs its stage config's own checks
    ("prune:\n  - {name: p, heads: 2.5}\n", r"prune\.0: --heads: is a fraction below 1"),
    ("prune:\n  - {name: p}\n", r"prune\.0: .*nothing to prune"),
    ("students:\n  - {name: s, layers: []}\n", r"students\.0: --layers: give at least one"),
    ("export:\n  - {format: torchscript, with_tokenizer: true}\n",
     r"export\.0: --with-tokenizer: is for --format onnx or ort"),
    ("trim_vocab: {min_count: 0}\n", r"trim_vocab: --min-count: must be >= 1"),
    ("bench: {batch: [0]}\n", r"bench: --batch: expected positive numbers"),
]


@pytest.mark.parametrize("text,error", BAD_RECIPES)
def test_bad_recipes_are_named(tmp_path, text, error):
    with pytest.raises(UserError, match=error):
        load(write(tmp_path, text))


def test_set_overrides_any_field_and_rejects_unknown_ones():
    with pytest.raises(UserError, match=r"export\.4\.model: 'int8/native' is not an artifact"):
        load(None, ["quantize=[{target: arm64, mode: static}]"])  # the default exports it
    r = load(None, ["teacher.train.epochs=3", "students.0.layers=[1,3]",
                    "quantize=[{target: arm64, mode: static}]", "export=[{format: onnx}]",
                    "max_accuracy_drop=0.5"])
    assert r.teacher.train.epochs == 3.0 and r.students[0].layers == [1, 3]
    assert [(q.target, q.mode) for q in r.quantize] == [("arm64", "static")]
    assert r.max_accuracy_drop == 0.5
    with pytest.raises(UserError, match=r"unknown key 'teacher\.epochs'"):
        load(None, ["teacher.epochs=3"])
    with pytest.raises(UserError, match=r"'7' is not one of 0\.\.0"):
        load(None, ["students.7.layers=[0]"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        load(None, ["teacher.model"])


def test_resolved_recipe_round_trips():
    r = load("tiny")
    import yaml

    from edgebert.compress.recipe import build

    again = build(Recipe, yaml.safe_load(yaml.safe_dump(to_dict(r))))
    assert to_dict(again) == to_dict(r)


def test_every_stage_option_has_a_recipe_entry_or_a_reason():
    """A recipe entry carries its stage config's options (compress passes what they share),
    so an option added to a stage and not to its recipe entry fails here, not silently."""
    import dataclasses

    from edgebert.compress.recipe import (
        RUN_SUPPLIED,
        ExportRecipe,
        PruneRecipe,
        QuantizeRecipe,
        StudentRecipe,
        TeacherRecipe,
        TrimVocabRecipe,
    )
    from edgebert.stages.distill.config import DistillConfig
    from edgebert.stages.export.config import ExportConfig
    from edgebert.stages.prune.config import PruneConfig
    from edgebert.stages.quantize.config import QuantizeConfig
    from edgebert.stages.teacher.config import FinetuneConfig
    from edgebert.stages.trim.config import TrimVocabConfig

    not_in_recipes = {  # what compress does not do with that stage, by design
        DistillConfig: {"student", "corpus", "max_length"},
    }
    pairs = [(TeacherRecipe, FinetuneConfig), (StudentRecipe, DistillConfig),
             (PruneRecipe, PruneConfig), (QuantizeRecipe, QuantizeConfig),
             (ExportRecipe, ExportConfig), (TrimVocabRecipe, TrimVocabConfig)]
    for entry, config in pairs:
        names = {f.name for f in dataclasses.fields(entry)}
        missing = ({f.name for f in dataclasses.fields(config)} - RUN_SUPPLIED - names
                   - not_in_recipes.get(config, set()))
        assert not missing, f"{entry.__name__} lacks {sorted(missing)} of {config.__name__}"


def test_recipe_options_reach_the_stage():
    from edgebert.compress.recipe import PruneRecipe, QuantizeRecipe, stage_options
    from edgebert.stages.prune.config import PruneConfig
    from edgebert.stages.quantize.config import QuantizeConfig

    q = stage_options(QuantizeRecipe(target="arm64", mode="static", fuse=False,
                                     calibration_examples=8, engine="ort"), QuantizeConfig)
    assert q["fuse"] is False and q["calibration_examples"] == 8 and "target" not in q
    p = stage_options(PruneRecipe(heads=0.5, scope="global", importance_batches=4), PruneConfig)
    assert p["scope"] == "global" and p["importance_batches"] == 4 and "name" not in p


def test_regression_tasks_keep_their_heads_where_the_recipe_says(tiny_bert, tmp_path):
    """The default recipe's pruning halves the heads of a classifier but not of a regression
    task's model (keep_heads_for: [regression]); the FFN pruning stays for both."""
    from edgebert.compress.recipe import load
    from edgebert.compress.run import steps_of

    def pruning(task: str, *sets: str) -> tuple[dict, list[str]]:
        said: list[str] = []
        recipe = load("default", [f"task.name={task}", f"teacher.model={tiny_bert}", *sets])
        steps = steps_of(recipe, tmp_path / task, said.append)
        return {s.out.name: (s.config.heads, s.config.ffn) for s in steps
                if s.title.startswith("prune")}, said

    kept, said = pruning("vader-amazon")
    assert kept == {"pruned_half": (0.0, 0.5), "pruned": (0.0, 0.5)}
    assert "pruned_half: every attention head kept (regression is in the recipe's " \
        "keep_heads_for)" in said
    assert pruning("sms-spam")[0] == {"pruned_half": (0.5, 0.5), "pruned": (0.0, 0.5)}
    assert pruning("vader-amazon", "keep_heads_for=[]")[0]["pruned_half"] == (0.5, 0.5)
    with pytest.raises(UserError, match="keep_heads_for: 'regresion' is not a task kind"):
        load("default", ["keep_heads_for=[regresion]"])


def test_trim_options_come_from_the_stage_and_old_spellings_still_load(tmp_path):
    """trim_vocab carries the trim-vocab stage's options; a recipe (or a run's recipe.yaml)
    written with `trim_vocab: false` or `trim_min_count` loads, saying the new key."""
    from edgebert.stages.trim.config import TrimVocabConfig

    r = load(None, ["trim_vocab.min_count=3", "trim_vocab.max_drop=null"])
    assert (r.trim_vocab.enabled, r.trim_vocab.min_count, r.trim_vocab.max_drop) == (True, 3, None)
    assert r.trim_vocab.splits == TrimVocabConfig().splits
    with pytest.warns(FutureWarning, match="trim_min_count is now trim_vocab.min_count"):
        old = load(write(tmp_path, "trim_vocab: false\ntrim_min_count: 2\n"))
    assert (old.trim_vocab.enabled, old.trim_vocab.min_count) == (False, 2)
