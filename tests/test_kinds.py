"""The task-kind registry: each kind's declared facts, at unit level."""

from __future__ import annotations

import numpy as np
import pytest

from edgebert.config import TASK_KINDS
from edgebert.errors import UserError
from edgebert.kinds import KINDS, kind


def test_every_configurable_kind_is_declared_once():
    assert tuple(KINDS) == TASK_KINDS
    with pytest.raises(UserError, match="not one of classification"):
        kind("poetry")


@pytest.mark.parametrize("name,shape,length,trimmed", [
    ("classification", (3,), 5, (3,)),       # [classes]: nothing to cut
    ("pair", (2,), 5, (2,)),
    ("regression", (1,), 5, (1,)),
    ("ner", (9, 4), 5, (5, 4)),              # [tokens, tags]: padding rows cut
    ("qa", (2, 9), 5, (2, 5)),               # [start/end, tokens]
])
def test_trim_cuts_padding_only_where_outputs_follow_tokens(name, shape, length, trimmed):
    row = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = kind(name).trim(row, length)
    assert out.shape == trimmed
    assert np.array_equal(out, row[tuple(slice(0, n) for n in trimmed)])


def test_onnx_outputs_axes_and_reading():
    assert kind("classification").output_axes() == {"logits": {0: "batch"}}
    assert kind("ner").output_axes() == {"logits": {0: "batch", 1: "sequence"}}
    qa = kind("qa")
    assert qa.output_axes() == {"start_logits": {0: "batch", 1: "sequence"},
                                "end_logits": {0: "batch", 1: "sequence"}}
    start, end = np.zeros((2, 7)), np.ones((2, 7))
    assert qa.from_outputs([start, end]).shape == (2, 2, 7)  # [B, start/end, L]
    logits = np.zeros((2, 3))
    assert kind("pair").from_outputs([logits]) is logits


def test_heads_and_their_options():
    assert kind("regression").head_options(["ignored"]) == {"num_labels": 1,
                                                            "problem_type": "regression"}
    opts = kind("classification").head_options(["neg", "pos"])
    assert opts["num_labels"] == 2 and opts["id2label"] == {0: "neg", 1: "pos"}
    assert kind("qa").head_options([]) == {}
    assert {k.head for k in KINDS.values()} == {"AutoModelForSequenceClassification",
                                               "AutoModelForTokenClassification",
                                               "AutoModelForQuestionAnswering"}
    assert [k.name for k in KINDS.values() if not k.top1] == ["regression"]
    assert [k.name for k in KINDS.values() if not k.served] == ["qa"]
