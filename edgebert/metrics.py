"""Metrics per head, computed from model outputs (logits as numpy arrays).

classification / pair: accuracy, precision, recall, F1 (binary: of the positive
class; more classes: macro), MCC, log loss. regression: Pearson, Spearman, MSE.
ner: entity-level precision / recall / F1 (seqeval, exact span and type).
qa: exact match and token F1 as in the SQuAD evaluation script.
"""

from __future__ import annotations

import collections
import functools
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


METRIC_NAMES = {"accuracy": "accuracy", "f1": "F1", "precision": "precision",
                "recall": "recall", "mcc": "MCC", "pearson": "Pearson",
                "spearman": "Spearman", "entity_f1": "entity F1",
                "exact_match": "exact match"}
"""How people name each metric, for reports and logs."""

CORRELATIONS = ("pearson", "spearman", "mcc")
"""Metrics that are coefficients in [-1, 1], not fractions of examples: shown as 0.873,
never as a percentage."""


def metric_name(metric: str | None) -> str:
    """The metric as a report names it; `None` (a row without a metric) reads "metric".

    >>> metric_name("entity_f1"), metric_name("pearson"), metric_name(None)
    ('entity F1', 'Pearson', 'metric')
    """
    return METRIC_NAMES.get(metric, metric) if metric else "metric"


def metric_text(value: float, metric: str | None) -> str:
    """A test score as a report prints it: a percentage, or a coefficient as it is.

    >>> metric_text(0.73, "pearson"), metric_text(0.73, "accuracy")
    ('0.7300', '73.00 %')
    """
    return f"{value:.4f}" if metric in CORRELATIONS else f"{100 * value:.2f} %"


def classification(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (of class 1 when binary, else macro), MCC, and the
    log loss (mean cross-entropy of the softmax against the gold labels, in nats): a
    continuous score that still moves when the others sit on a plateau.

    >>> m = classification(np.array([[0., 1.], [1., 0.]]), np.array([1, 1]))
    >>> m["accuracy"], round(m["log_loss"], 4)
    (0.5, 0.8133)
    """
    from sklearn.metrics import matthews_corrcoef, precision_recall_fscore_support

    preds = logits.argmax(-1)
    binary = logits.shape[-1] == 2
    p, r, f1, _ = precision_recall_fscore_support(
        labels, preds, average="binary" if binary else "macro", zero_division=0)
    return {"accuracy": float((preds == labels).mean()), "precision": float(p),
            "recall": float(r), "f1": float(f1),
            "mcc": float(matthews_corrcoef(labels, preds)) if len(set(labels)) > 1 else 0.0,
            "log_loss": log_loss(logits, labels)}


def log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy (nats) of softmax(logits) against integer labels (scipy's
    log_softmax, in float64: large logits do not overflow).

    >>> round(log_loss(np.array([[0., 0.]]), np.array([0])), 4)  # ln 2
    0.6931
    """
    from scipy.special import log_softmax

    log_p = log_softmax(logits.astype(np.float64), axis=-1)
    return float(-log_p[np.arange(len(labels)), labels.astype(int)].mean())


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
    each = squad_each(predictions, answers)
    n = max(len(predictions), 1)
    return {name: sum(values) / n for name, values in each.items()}


def squad_each(predictions: list[str], answers: list[list[str]]) -> dict[str, list[float]]:
    """Per example: exact match (0 or 1) and F1, each the best over its answers."""
    return {"exact_match": [float(max(_normalize(p) == _normalize(a) for a in ans))
                            for p, ans in zip(predictions, answers)],
            "f1": [max(_f1(p, a) for a in ans) for p, ans in zip(predictions, answers)]}


def outcomes_means(each: dict[str, list[float]], truth: list) -> dict:
    """A metric that is a mean over examples (QA's exact match and F1): the values, and
    what identifies the examples (`truth`) so only the same ones are paired."""
    return {"means": {k: [round(v, 6) for v in vals] for k, vals in each.items()},
            "true": truth}


# ---------------------------------------------------------------- paired standard errors
# A test split of about a thousand examples measures accuracy to about a point (binomial SE
# sqrt(p (1 - p) / n): 1.1 points at 81 % of 1,270), as large as the budget. Two models
# scored on the same examples mostly agree, so their *difference* is measured much better:
# resampling the examples (paired bootstrap) gives its standard error.

SE_DRAWS = 1000


def reference(scores: dict) -> dict:
    """A parent's or teacher's scores kept beside a stage's own for comparison, without the
    per-example outcomes: those live once, in the metrics.json of the model they are of."""
    return {k: v for k, v in scores.items() if k != "outcomes"}


def outcomes_classification(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Per-example predictions a paired bootstrap resamples (see `paired_se`)."""
    return {"pred": logits.argmax(-1).astype(int).tolist(), "true": labels.astype(int).tolist(),
            "classes": int(logits.shape[-1])}


def outcomes_regression(preds: np.ndarray, targets: np.ndarray) -> dict:
    return {"pred": [float(f"{v:.6g}") for v in preds.reshape(-1)],
            "true": [float(f"{v:.6g}") for v in targets.reshape(-1)]}


def outcomes_entities(pred_tags: list[list[str]], true_tags: list[list[str]]) -> dict:
    """Per sentence: entities predicted right (exact span and type), predicted, true."""
    from seqeval.metrics.sequence_labeling import get_entities

    counts = []
    for p, t in zip(pred_tags, true_tags):
        got, want = set(get_entities(p)), set(get_entities(t))
        counts.append([len(got & want), len(got), len(want)])
    return {"entities": counts, "true": [c[2] for c in counts]}


def _resampled(out: dict, metric: str, w: np.ndarray) -> np.ndarray | None:
    """`metric` under each row of example weights `w` [draws, n], or None where not
    computable this way (MCC, MSE, token accuracy). Binary precision / recall / F1 are of
    class 1 and the multi-class ones macro over the classes in the full split, as
    `classification`."""
    if "means" in out:
        values = out["means"].get(metric)
        return None if values is None else w @ np.asarray(values) / len(values)
    if "entities" in out:  # micro scores over the resampled sentences' entities
        right, found, wanted = (w @ np.asarray(out["entities"])).T
        num, den = {"entity_precision": (right, found), "entity_recall": (right, wanted),
                    "entity_f1": (2 * right, found + wanted)}.get(metric, (None, None))
        return None if num is None else np.divide(num, den, out=np.zeros(len(w)),
                                                  where=den > 0)
    pred, true = np.asarray(out["pred"]), np.asarray(out["true"])
    n = len(true)
    if "classes" in out:
        if metric == "accuracy":
            return w @ (pred == true) / n
        if metric not in ("precision", "recall", "f1"):
            return None
        classes = [1] if out["classes"] == 2 else sorted(set(true) | set(pred))
        scores = []
        for c in classes:
            tp = w @ ((pred == c) & (true == c))
            fp = w @ ((pred == c) & (true != c))
            fn = w @ ((pred != c) & (true == c))
            num, den = {"precision": (tp, tp + fp), "recall": (tp, tp + fn),
                        "f1": (2 * tp, 2 * tp + fp + fn)}[metric]
            scores.append(np.divide(num, den, out=np.zeros(len(w)), where=den > 0))
        return np.mean(scores, axis=0)
    if metric not in ("pearson", "spearman"):
        return None
    if metric == "spearman":  # ranks of the full split: an approximation under resampling
        pred, true = pred.argsort().argsort(), true.argsort().argsort()
    x, y = pred.astype(np.float64), true.astype(np.float64)
    mx, my = w @ x / n, w @ y / n
    cov = w @ (x * y) / n - mx * my
    vx, vy = w @ (x * x) / n - mx ** 2, w @ (y * y) / n - my ** 2
    return np.divide(cov, np.sqrt(vx * vy), out=np.zeros(len(w)), where=vx * vy > 0)


@functools.lru_cache(maxsize=1)
def _draws(n: int, draws: int, seed: int) -> np.ndarray:
    """Example weights [draws, n] of a bootstrap (how often each example is drawn): the same
    for every row of a report, so made once per test split."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=draws)


def paired_se(a: dict, b: dict, metric: str, draws: int = SE_DRAWS,
              seed: int = 0) -> float | None:
    """Standard error, in points, of metric(a) - metric(b) for two models' per-example
    outcomes on the same examples (a paired bootstrap over the examples); None when they
    are not on the same examples or the metric is not resampled here.

    >>> teacher = {"pred": [1, 0] * 50, "true": [1, 0] * 50, "classes": 2}
    >>> paired_se(teacher, teacher, "accuracy")
    0.0
    """
    if not a or not b or a.get("true") != b.get("true") or not a["true"]:
        return None
    w = _draws(len(a["true"]), draws, seed)
    ra, rb = _resampled(a, metric, w), _resampled(b, metric, w)
    if ra is None or rb is None:
        return None
    return float(100.0 * np.std(ra - rb, ddof=1))
