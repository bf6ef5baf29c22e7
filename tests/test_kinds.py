"""The task-kind registry: each kind's declared facts, at unit level."""

from __future__ import annotations

import numpy as np
import pytest

from edgebert.config import TASK_KINDS
from edgebert.data.features import IGNORE, pad_batch
from edgebert.errors import UserError
from edgebert.kinds import KINDS, TextExample, TokenExample, kind
from helpers import squad_json


@pytest.fixture(scope="module")
def tok(tiny_bert):
    from edgebert.modeling import load_tokenizer

    return load_tokenizer(tiny_bert)


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
    ("multiple_choice", (4,), 5, (4,)),      # [choices]
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
                                               "AutoModelForQuestionAnswering",
                                               "AutoModelForMultipleChoice"}
    assert [k.name for k in KINDS.values() if not k.top1] == ["regression"]
    assert [k.name for k in KINDS.values() if not k.served] == ["qa"]


# ---------------------------------------------------------------- encode and score, per kind

def test_classification_encodes_labels_counts_truncation_and_scores(tok):
    examples = [TextExample("good movie", 1), TextExample("the plot was dull and boring", 0)]
    enc = kind("classification").encode(examples, tok, 6, 64)
    assert [f["labels"] for f in enc.features] == [1, 0]
    assert [len(f["input_ids"]) for f in enc.features] == [4, 6]  # [CLS] .. [SEP], cut at 6
    assert enc.truncated == 1
    outputs = [np.array([0.0, 2.0]), np.array([0.5, 0.0])]
    assert kind("classification").score([], examples, enc, outputs)["accuracy"] == 1.0
    outputs[1] = np.array([0.0, 0.5])
    assert kind("classification").score([], examples, enc, outputs)["accuracy"] == 0.5


def test_pair_encodes_both_texts_with_segment_ids(tok):
    enc = kind("pair").encode([TextExample("good", 1, "bad")], tok, 32, 64)
    assert enc.features[0]["token_type_ids"] == [0, 0, 0, 1, 1]


def test_regression_keeps_real_targets_and_scores_pearson(tok):
    examples = [TextExample("good", 0.5), TextExample("bad", 2.0), TextExample("dull", 1.0)]
    enc = kind("regression").encode(examples, tok, 32, 64)
    assert [f["labels"] for f in enc.features] == [0.5, 2.0, 1.0]
    res = kind("regression").score([], examples, enc, [np.array([v]) for v in (1., 4., 2.)])
    assert res["pearson"] == pytest.approx(1.0)


def test_ner_labels_first_pieces_and_scores_words(tok):
    labels = ["O", "B-person"]
    examples = [TokenExample(["john", "xyz"], [1, 0])]  # "xyz" splits into several pieces
    enc = kind("ner").encode(examples, tok, 32, 64)
    feat_labels = enc.features[0]["labels"]
    assert feat_labels[0] == IGNORE and feat_labels[-1] == IGNORE  # [CLS], [SEP]
    assert [x for x in feat_labels if x != IGNORE] == [1, 0]
    assert feat_labels.count(IGNORE) > 2  # the later pieces of "xyz"
    right = np.zeros((len(feat_labels), 2))
    right[np.arange(len(feat_labels)), [max(x, 0) for x in feat_labels]] = 1
    assert kind("ner").score(labels, examples, enc, [right])["entity_f1"] == 1.0
    assert kind("ner").score(labels, examples, enc, [right[:, ::-1]])["entity_f1"] == 0.0


def test_qa_windows_and_span_scoring(tok, tmp_path):
    from edgebert.kinds.spans import read_squad

    path = squad_json(tmp_path / "q.json", n=2)
    examples = read_squad(path, path.read_text())
    enc = kind("qa").encode(examples, tok, 14, 2)  # short windows: contexts split
    assert enc.truncated > 0 and len(enc.features) == len(examples) + enc.truncated
    outputs = []
    for feat in enc.features:  # one-hot at the labelled span (or [CLS] where absent)
        out = np.full((2, len(feat["input_ids"])), -5.0)
        out[0, feat["start_positions"]] = out[1, feat["end_positions"]] = 5.0
        outputs.append(out)
    res = kind("qa").score([], examples, enc, outputs)
    assert res["exact_match"] == 1.0 and res["f1"] == 1.0  # fractions, like every metric


def test_padding_of_any_rank():
    flat = pad_batch([{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [5], "labels": 0}], 0)
    assert flat["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    nested = pad_batch([{"input_ids": [[5, 6], [5, 6, 7]], "attention_mask": [[1, 1], [1, 1, 1]],
                         "labels": 1},
                        {"input_ids": [[5], [5, 6]], "attention_mask": [[1], [1, 1]],
                         "labels": 0}], 9)
    assert nested["input_ids"].shape == (2, 2, 3)
    assert nested["input_ids"][1].tolist() == [[5, 9, 9], [5, 6, 9]]
    assert nested["attention_mask"][1].tolist() == [[1, 0, 0], [1, 1, 0]]
