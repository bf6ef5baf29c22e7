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
