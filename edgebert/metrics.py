"""Metrics per head, computed from model outputs (logits as numpy arrays).

classification / pair: accuracy, precision, recall, F1 (binary: of the positive
class; more classes: macro), MCC. regression: Pearson, Spearman, MSE.
ner: entity-level precision / recall / F1 (seqeval, exact span and type).
qa: exact match and token F1 as in the SQuAD evaluation script.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np


def points(scores: dict, metric: str) -> float:
    """A metric in points: every metric here is a fraction (Pearson in [-1, 1]), x 100;
    what every budget (--max-drop, max_accuracy_drop) is counted in.

    >>> points({"f1": 0.955}, "f1")
    95.5
    """
    return scores[metric] * 100.0


def classification(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (of class 1 when binary, else macro) and MCC.

    >>> classification(np.array([[0., 1.], [1., 0.]]), np.array([1, 1]))["accuracy"]
    0.5
    """
    from sklearn.metrics import matthews_corrcoef, precision_recall_fscore_support

    preds = logits.argmax(-1)
    binary = logits.shape[-1] == 2
    p, r, f1, _ = precision_recall_fscore_support(
        labels, preds, average="binary" if binary else "macro", zero_division=0)
    return {"accuracy": float((preds == labels).mean()), "precision": float(p),
            "recall": float(r), "f1": float(f1),
            "mcc": float(matthews_corrcoef(labels, preds)) if len(set(labels)) > 1 else 0.0}


def regression(preds: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Pearson, Spearman and MSE.

    >>> regression(np.array([1., 2., 3.]), np.array([2., 4., 7.]))["spearman"]
    1.0
    """
    from scipy.stats import pearsonr, spearmanr

    preds, targets = preds.reshape(-1), targets.reshape(-1)
    constant = np.ptp(preds) == 0 or np.ptp(targets) == 0  # correlation undefined
    return {"pearson": 0.0 if constant else float(pearsonr(preds, targets)[0]),
            "spearman": 0.0 if constant else float(spearmanr(preds, targets)[0]),
            "mse": float(np.mean((preds - targets) ** 2))}


def entities(pred_tags: list[list[str]], true_tags: list[list[str]]) -> dict[str, float]:
    """Entity-level scores: an entity counts only with exact span and type.

    >>> entities([["B-loc", "I-loc", "O"]], [["B-loc", "I-loc", "O"]])["entity_f1"]
    1.0
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    tokens = sum(len(t) for t in true_tags)
    correct = sum(p == t for ps, ts in zip(pred_tags, true_tags) for p, t in zip(ps, ts))
    return {"entity_precision": float(precision_score(true_tags, pred_tags, zero_division=0)),
            "entity_recall": float(recall_score(true_tags, pred_tags, zero_division=0)),
            "entity_f1": float(f1_score(true_tags, pred_tags, zero_division=0)),
            "token_accuracy": correct / max(tokens, 1)}


def _normalize(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def _f1(pred: str, truth: str) -> float:
    p, t = _normalize(pred), _normalize(truth)
    common = sum((collections.Counter(p) & collections.Counter(t)).values())
    if not p or not t:
        return float(p == t)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def squad(predictions: list[str], answers: list[list[str]]) -> dict[str, float]:
    """Exact match and F1, each the best over an example's answers, as fractions in [0, 1]
    like every other metric here (SQuAD's own script prints percent; the report and the
    quantization guard turn every metric into points the same way, x 100).

    >>> squad(["the Eiffel tower"], [["Eiffel Tower", "tower"]])
    {'exact_match': 1.0, 'f1': 1.0}
    """
    em = [max(_normalize(p) == _normalize(a) for a in ans) for p, ans in zip(predictions, answers)]
    f1 = [max(_f1(p, a) for a in ans) for p, ans in zip(predictions, answers)]
    n = max(len(predictions), 1)
    return {"exact_match": sum(em) / n, "f1": sum(f1) / n}
