"""Metrics against values computed by hand."""

import numpy as np
import pytest

from edgebert import metrics


def test_classification_binary_by_hand():
    logits = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1]], dtype=float)  # preds 1 1 0 0 1
    labels = np.array([1, 0, 0, 1, 1])
    m = metrics.classification(logits, labels)
    # tp=2 fp=1 fn=1 tn=1
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    mcc = (2 * 1 - 1 * 1) / np.sqrt((2 + 1) * (2 + 1) * (1 + 1) * (1 + 1))
    assert m["mcc"] == pytest.approx(mcc)


def test_classification_multiclass_macro():
    logits = np.eye(3)[[0, 1, 2, 2]]
    m = metrics.classification(logits, np.array([0, 1, 2, 1]))
    assert m["accuracy"] == pytest.approx(0.75)
    # per class F1: 1, 2/3, 2/3 -> macro 7/9
    assert m["f1"] == pytest.approx(7 / 9)


def test_regression_by_hand():
    m = metrics.regression(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0]))
    assert m["pearson"] == pytest.approx(0.8)
    assert m["spearman"] == pytest.approx(0.8)
    assert m["mse"] == pytest.approx(0.5)
    assert metrics.regression(np.ones(3), np.arange(3.0))["pearson"] == 0.0  # undefined -> 0


def test_entity_f1_needs_exact_span_and_type():
    truth = [["B-per", "I-per", "O", "B-loc"], ["B-org", "O"]]
    pred = [["B-per", "O", "O", "B-loc"], ["B-org", "O"]]  # per span cut short
    m = metrics.entities(pred, truth)
    # true 3 entities, predicted 3 (per[0:1], loc, org), correct 2
    assert m["entity_precision"] == pytest.approx(2 / 3)
    assert m["entity_recall"] == pytest.approx(2 / 3)
    assert m["token_accuracy"] == pytest.approx(5 / 6)


def test_squad_normalisation_and_partial_f1():
    m = metrics.squad(["The Eiffel Tower!", "big red house"], [["eiffel tower"], ["red house"]])
    assert m["exact_match"] == pytest.approx(0.5)
    # second: pred {big, red, house} vs {red, house}: p=2/3, r=1 -> f1 0.8
    assert m["f1"] == pytest.approx((1.0 + 0.8) / 2)


@pytest.mark.parametrize("metric, classes", [("accuracy", 2), ("f1", 2), ("precision", 2),
                                             ("recall", 2), ("accuracy", 4), ("f1", 4),
                                             ("pearson", 0)])
def test_resampled_metrics_are_the_metric_of_the_resampled_examples(metric, classes):
    """Each bootstrap draw's vectorised metric equals `classification` / `regression` on
    the examples that draw repeats, so the paired SE resamples the very metric reported."""
    from edgebert.metrics import _resampled, outcomes_classification, outcomes_regression

    rng = np.random.default_rng(3)
    n = 60
    if classes:
        true = rng.integers(0, classes, n)
        logits = rng.normal(size=(n, classes)) + 2.0 * np.eye(classes)[true]
        out, full = outcomes_classification(logits, true), lambda i: metrics.classification(
            logits[i], true[i])
    else:
        true = rng.normal(size=n)
        pred = true + rng.normal(scale=0.7, size=n)
        out, full = outcomes_regression(pred, true), lambda i: metrics.regression(pred[i], true[i])
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=5)
    got = _resampled(out, metric, w)
    for draw, value in zip(w, got):
        index = np.repeat(np.arange(n), draw)
        assert value == pytest.approx(full(index)[metric], abs=1e-4 if classes else 1e-3)


def test_paired_se_is_small_for_models_that_mostly_agree():
    """Two models about 90 % right that disagree on 4 of 400 examples: the SE of their
    difference is about sqrt(4) / 400 = 0.5 points, far under either accuracy's own (1.5)."""
    from edgebert.metrics import outcomes_classification, paired_se

    true = np.array([0, 1] * 200)
    a = true.copy()
    a[:40] = 1 - a[:40]                      # 90 % right
    b = a.copy()
    b[100:104] = 1 - b[100:104]              # 4 of a's right answers wrong: 89 %
    onehot = lambda p: np.eye(2)[p]          # noqa: E731
    se = paired_se(outcomes_classification(onehot(a), true),
                   outcomes_classification(onehot(b), true), "accuracy")
    assert 0.3 < se < 0.7
    assert paired_se(outcomes_classification(onehot(a), true),
                     outcomes_classification(onehot(a), true[::-1]), "accuracy") is None
    assert paired_se(outcomes_classification(onehot(a), true),
                     outcomes_classification(onehot(b), true), "mcc") is None


def test_resampled_entity_f1_is_seqeval_on_the_resampled_sentences():
    from edgebert.metrics import _resampled, outcomes_entities

    rng = np.random.default_rng(5)
    tags = ["O", "B-loc", "I-loc", "B-per"]
    true = [list(rng.choice(tags, size=6, p=[0.6, 0.2, 0.1, 0.1])) for _ in range(40)]
    pred = [[t if rng.random() < 0.8 else str(rng.choice(tags)) for t in s] for s in true]
    out = outcomes_entities(pred, true)
    w = rng.multinomial(40, np.full(40, 1 / 40), size=5)
    for metric in ("entity_f1", "entity_precision", "entity_recall"):
        for draw, value in zip(w, _resampled(out, metric, w)):
            index = np.repeat(np.arange(40), draw)
            want = metrics.entities([pred[i] for i in index], [true[i] for i in index])[metric]
            assert value == pytest.approx(want)


def test_resampled_squad_scores_are_their_means():
    from edgebert.metrics import _resampled, outcomes_means, squad, squad_each

    preds = ["Paris", "the tower", "1889", "a dog", ""]
    answers = [["Paris"], ["Eiffel Tower"], ["1889", "in 1889"], ["the cat"], ["x"]]
    out = outcomes_means(squad_each(preds, answers), answers)
    w = np.random.default_rng(0).multinomial(5, np.full(5, 0.2), size=4)
    for metric in ("exact_match", "f1"):
        for draw, value in zip(w, _resampled(out, metric, w)):
            index = np.repeat(np.arange(5), draw)
            assert value == pytest.approx(squad([preds[i] for i in index],
                                                [answers[i] for i in index])[metric])
