"""The plan of `edgebert compress`, from data alone: the recipe and what a run directory
and the machine hold (`Found`), with no file read and no stage run."""

from __future__ import annotations

from pathlib import Path

from edgebert.compress.plan import COPY_TEACHER, Found, plan
from edgebert.compress.recipe import load

RUN = Path("runs/plan")  # never created: plan reads nothing from it
X86 = Found(native_target="x86-vnni")
DEFAULT_TITLES = [
    "fine-tune the teacher from minilm-l6",
    "distil student (layers [0, 2, 4])",
    "prune student into pruned_half",
    "prune pruned_half into pruned",
    "trim the vocabulary of pruned",
    "INT8 dynamic for x86-vnni from pruned_trimmed",
    "INT8 dynamic for arm64 from pruned_trimmed",
    "INT8 static (NNCF) for openvino-int8 from pruned_trimmed",
    "export pruned_trimmed to openvino",
    "export pruned_trimmed to torchscript",
    "export pruned_trimmed to ort",
    "export pruned_trimmed to executorch INT8",
    "export x86-vnni to ort with the tokenizer inside",
    "measure latency (interleaved, one process per turn)",
]


def steps(found: Found = X86, *sets: str) -> tuple[list, list[str]]:
    said: list[str] = []
    return plan(load("default", list(sets)), RUN, found, said.append), said


def outs(planned) -> list[str]:
    return [str(s.out.relative_to(RUN)) for s in planned]


def test_the_default_recipe_plans_its_steps_in_order():
    planned, said = steps()
    assert [s.title for s in planned] == DEFAULT_TITLES
    assert outs(planned)[:6] == ["teacher", "student", "pruned_half", "pruned",
                                 "pruned_trimmed", "int8/x86-vnni"]
    assert [s.stage for s in planned][:5] == ["finetune", "distill", "prune", "prune",
                                              "trim-vocab"]
    trim = planned[4].config
    assert Path(trim.model) == RUN / "pruned" and trim.min_count == 1
    assert said == []
    # native is this machine's target, found by the caller
    arm = outs(steps(Found(native_target="arm64"))[0])
    assert "int8/arm64-dynamic" in arm and "int8/arm64" not in arm  # a target named twice


def test_a_fine_tuned_teacher_is_copied():
    planned, _ = steps(X86, "teacher.finetuned=true", "teacher.model=runs/rt/teacher")
    assert planned[0].stage == COPY_TEACHER and planned[0].config.model == "runs/rt/teacher"
    assert planned[0].title == "copy the fine-tuned teacher runs/rt/teacher"


def test_a_non_wordpiece_teacher_drops_trimming_and_the_text_exports():
    planned, said = steps(Found(native_target="x86-vnni", tokenizer="BPE"))
    titles = [s.title for s in planned]
    assert not [t for t in titles if "trim" in t or "tokenizer inside" in t]
    assert "INT8 dynamic for x86-vnni from pruned" in titles
    assert said == [("minilm-l6: a BPE tokenizer; vocabulary trimming and the exports with the "
                     "tokenizer inside take WordPiece only, so they are skipped")]


def test_a_missing_runtime_drops_its_steps():
    planned, said = steps(Found(native_target="x86-vnni",
                                missing={"openvino": ("openvino", "nncf")}))
    assert [o for o in outs(planned) if "openvino" in o] == []
    assert len(planned) == len(DEFAULT_TITLES) - 2
    install = "openvino and nncf not installed (pip install 'edgebert[openvino]')"
    assert said == [f"skipping INT8 for openvino-int8: {install}",
                    f"skipping the openvino export: {install}"]
    # without executorch (it is not in edgebert[full]), the phones' .pte is skipped the same way
    planned, said = steps(Found(native_target="x86-vnni", missing={"executorch": ("executorch",)}))
    assert "export/executorch" not in outs(planned) and len(planned) == len(DEFAULT_TITLES) - 1
    assert said == ["skipping the executorch export: executorch not installed (pip install "
                    "'edgebert[executorch]')"]
    # refused before (the budget, or its arm64 check): skipped the same way, said where why is
    planned, said = steps(Found(native_target="x86-vnni", refused=frozenset({"export/executorch"})))
    assert "export/executorch" not in outs(planned) and len(planned) == len(DEFAULT_TITLES) - 1
    assert said == ["skipping the executorch export: refused before (executorch.refused beside "
                    "it says why; delete it to try again)"]


def test_a_kind_without_a_text_graph_drops_the_text_export():
    planned, said = steps(Found(native_target="x86-vnni", kind="qa"))
    assert "export/ort-text" not in outs(planned)
    assert any("qa tasks have no one-file export" in s for s in said)


def test_a_student_over_the_budget_adds_the_deeper_chain():
    """The student lost 2 of the 1-point budget on dev: the chain again from one teacher
    layer more, pruned by the same steps, trimmed and quantized for every target."""
    found = Found(native_target="x86-vnni", dev_lost={"teacher": 0.0, "student": 2.0},
                  dev_examples=1000, teacher_layers=6)
    planned, said = steps(found, "learned_prune.enabled=false")
    deeper = ["distil student_deep (layers [0, 2, 4, 5])",
              "prune student_deep into pruned_half_deep",
              "prune pruned_half_deep into pruned_deep",
              "trim the vocabulary of pruned_deep",
              "INT8 dynamic for x86-vnni from pruned_deep_trimmed",
              "INT8 dynamic for arm64 from pruned_deep_trimmed",
              "INT8 static (NNCF) for openvino-int8 from pruned_deep_trimmed"]
    # after the recipe's INT8 steps, before its exports (which stay on the main chain)
    assert [s.title for s in planned] == DEFAULT_TITLES[:8] + deeper + DEFAULT_TITLES[8:]
    assert "int8/x86-vnni-pruned_deep" in outs(planned)
    assert "student is 2.00 dev points under the teacher, more than the 1-point budget " \
        "leaves for INT8: the chain again from student_deep, teacher layers [0, 2, 4, 5]" in said
    # within the budget, or with deeper: false, no deeper chain
    assert len(steps(Found(native_target="x86-vnni", dev_lost={"teacher": 0.0, "student": 0.2},
                           dev_examples=1000, teacher_layers=6))[0]) == len(DEFAULT_TITLES)
    assert len(steps(found, "deeper=false", "learned_prune.enabled=false")[0]) == \
        len(DEFAULT_TITLES)


def test_a_small_task_also_quantizes_and_prunes_the_teacher():
    """Under teacher_int8_below training examples the teacher's INT8 and its learned pruning
    join the plan for every target, whatever dev says of the students; at or above it, and
    before the teacher is trained (0 examples known), the plan is the recipe's."""
    small = Found(native_target="x86-vnni", dev_lost={"teacher": 0.0, "student": 0.2},
                  dev_examples=538, train_examples=4304, teacher_layers=6)
    planned, said = steps(small)
    teacher_int8 = ["INT8 dynamic for x86-vnni from teacher",
                    "INT8 dynamic for arm64 from teacher",
                    "INT8 static (NNCF) for openvino-int8 from teacher"]
    assert [s.title for s in planned] == (DEFAULT_TITLES[:8] + teacher_int8 + LEARNED
                                          + DEFAULT_TITLES[8:])
    assert {"int8/x86-vnni-teacher", "int8/arm64-teacher",
            "int8/x86-vnni-learned"} <= set(outs(planned))
    assert Path(planned[8].config.model) == RUN / "teacher"  # its own vocabulary, untrimmed
    assert said == ["4,304 training examples (under 10,000): the teacher is quantized too, a "
                    "dev split this small may not see what the students lost",
                    "4,304 training examples (under 10,000): the teacher is also pruned by "
                    "learned masks to 30% sparsity (learned)"]
    without = [s.title for s in steps(small, "learned_prune.enabled=false")[0]]
    assert without == DEFAULT_TITLES[:8] + teacher_int8 + DEFAULT_TITLES[8:]
    # a chain whose last model is the teacher quantizes it once, as int8/<target>
    alone = outs(steps(small, "students=[]", "prune=[]", "learned_prune.enabled=false")[0])
    assert "int8/x86-vnni" in alone and not [o for o in alone if o.endswith("-teacher")]
    for found, sets in ((small, ["teacher_int8_below=4304"]), (small, ["teacher_int8_below=0"]),
                        (Found(native_target="x86-vnni", train_examples=10231), []), (X86, [])):
        assert [s.title for s in steps(found, *sets)[0]] == DEFAULT_TITLES


LEARNED = ["prune teacher by learned masks into learned (sparsity 0.3)",
           "trim the vocabulary of learned",
           "INT8 dynamic for x86-vnni from learned_trimmed",
           "INT8 dynamic for arm64 from learned_trimmed",
           "INT8 static (NNCF) for openvino-int8 from learned_trimmed"]


def test_a_student_over_the_budget_adds_the_learned_pruning_of_the_teacher():
    """The student lost 2 of the 1-point budget on dev: the teacher is also pruned by learned
    masks, trimmed and quantized for every target (beside the deeper chain); within the
    budget the plan is the recipe's alone."""
    over = Found(native_target="x86-vnni", dev_lost={"teacher": 0.0, "student": 2.0},
                 dev_examples=1000, teacher_layers=6)
    planned, said = steps(over, "deeper=false", "learned_prune.sparsity=0.5")
    titles = [s.title for s in planned]
    learned = [t.replace("0.3", "0.5") for t in LEARNED]
    assert titles == DEFAULT_TITLES[:8] + learned + DEFAULT_TITLES[8:]
    step = planned[8]
    assert step.stage == "prune-learned" and step.config.sparsity == 0.5
    assert Path(step.config.model) == Path(step.config.teacher) == RUN / "teacher"
    assert {"int8/x86-vnni-learned", "int8/arm64-learned"} <= set(outs(planned))
    assert "student is 2.00 dev points under the teacher: the teacher is also pruned by " \
        "learned masks to 50% sparsity (learned)" in said
    # with the deeper chain: after it, both tried
    both = [s.title for s in steps(over)[0]]
    assert both[-len(DEFAULT_TITLES[8:]) - len(LEARNED):-len(DEFAULT_TITLES[8:])] == LEARNED
    # within the budget, or switched off: the recipe's plan alone
    within = Found(native_target="x86-vnni", dev_lost={"teacher": 0.0, "student": 0.2},
                   dev_examples=1000, teacher_layers=6)
    assert [s.title for s in steps(within)[0]] == DEFAULT_TITLES
    assert "prune-learned" not in [s.stage for s in steps(over, "learned_prune.enabled=false",
                                                          "deeper=false")[0]]


def test_a_last_model_over_the_budget_falls_back_to_an_earlier_one():
    lost = {"teacher": 0.0, "student": 0.2, "pruned_half": 0.5, "pruned": 0.9,
            "pruned_trimmed": 0.9}
    planned, said = steps(Found(native_target="x86-vnni", dev_lost=lost, dev_examples=1000))
    assert "trim the vocabulary of pruned_half" in [s.title for s in planned]
    assert {"int8/x86-vnni-pruned_half", "int8/arm64-pruned_half",
            "int8/openvino-int8-pruned_half"} <= set(outs(planned))
    assert "pruned_trimmed is 0.90 dev points under the teacher, leaving INT8 less than 0.30 " \
        "of the 1-point budget: pruned_half (0.50 under) is quantized too (fallback)" in said
    assert "int8/x86-vnni-pruned_half" not in outs(steps(Found(
        native_target="x86-vnni", dev_lost=lost, dev_examples=1000), "fallback=false")[0])
