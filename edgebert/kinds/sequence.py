"""Sequence heads: a class per text (classification), per text pair (pair), or a real
value (regression). One output row per example: [B, C] logits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert import metrics
from edgebert.data.features import INPUTS, Encoded
from edgebert.errors import UserError
from edgebert.kinds.base import Kind, softmax, strings


@dataclass
class TextExample:
    """One sentence (or sentence pair) with a class index or a regression target."""

    text: str
    label: int | float
    text_pair: str | None = None
    group: str | None = None
    """What the split keeps together (the movie, for Rotten Tomatoes)."""


def encode_texts(examples: list[TextExample], tok, max_length: int, target=int) -> Encoded:
    texts = [ex.text for ex in examples]
    pairs = [ex.text_pair for ex in examples] if examples and examples[0].text_pair is not None \
        else None
    full = tok(texts, pairs)["input_ids"]
    enc = tok(texts, pairs, truncation=True, max_length=max_length)
    feats = []
    for i, ex in enumerate(examples):
        feat = {k: enc[k][i] for k in INPUTS if k in enc}
        feat["labels"] = target(ex.label)
        feats.append(feat)
    truncated = sum(len(f) > max_length for f in full)
    return Encoded(feats, truncated)


@dataclass(frozen=True)
class Classification(Kind):
    """classification (text, label) and pair (text, text_pair, label): softmax over the
    labels the training split has."""

    def build(self, raw, files):
        counts: dict[str, int] = {}
        for r in raw["train"]:
            counts[r["label"]] = counts.get(r["label"], 0) + 1
        labels = sorted(counts)
        if len(labels) < 2:
            raise UserError(f"{files['train']}: the training split has {len(labels)} distinct "
                            f"label(s); classification needs at least 2")
        scores = [x for x in labels if _is_fraction(x)]
        if scores:  # --kind decides; a mismatch is one line
            raise UserError(f"{files['train']}: label '{scores[0]}' is a fractional number "
                            f"({len(labels)} distinct labels): scores are a regression task "
                            f"(--kind regression); classes need names or whole numbers")
        rare = [x for x in labels if counts[x] < 2]
        if rare:
            raise UserError(f"{files['train']}: class '{rare[0]}' has {counts[rare[0]]} "
                            f"training example(s) ({len(rare)} class(es) with fewer than 2); "
                            f"add examples or merge the class")
        index = {name: i for i, name in enumerate(labels)}
        splits = {}
        for s, rows in raw.items():
            for r in rows:
                if r["label"] not in index:
                    raise UserError(f"{files[s]}: {r['_where']}: label '{r['label']}' does "
                                    f"not occur in the training data ({', '.join(labels)})")
            splits[s] = [TextExample(r["text"], index[r["label"]], r.get("text_pair"))
                         for r in rows]
        return labels, splits

    def texts(self, example):
        return [example.text] + ([example.text_pair] if example.text_pair else [])

    def encode(self, examples, tokenizer, max_length, stride):
        return encode_texts(examples, tokenizer, max_length)

    def score(self, labels, examples, encoded, outputs):
        return metrics.classification(np.stack(outputs),
                                      np.array([f["labels"] for f in encoded.features]))

    def outcomes(self, labels, examples, encoded, outputs):
        return metrics.outcomes_classification(
            np.stack(outputs), np.array([f["labels"] for f in encoded.features]))

    def serve_items(self, texts, pairs=None, choices=None):
        texts = strings(texts, "texts")
        if choices is not None:
            raise ValueError(f"choices: not for a {self.name} model")
        if "text_pair" not in self.roles:
            if pairs is not None:
                raise ValueError("pairs: only for a sentence-pair model, one per text")
            return [(t, [t]) for t in texts]
        if pairs is None:
            raise ValueError("this is a sentence-pair model: pass pairs=[...]")
        pairs = strings(pairs, "pairs")
        if len(pairs) != len(texts):
            raise ValueError(f"pairs: {len(pairs)} for {len(texts)} texts; one per text")
        return [((t, p), [(t, p)]) for t, p in zip(texts, pairs)]

    def serve_result(self, logits, encodings, given, labels):
        p = softmax(logits.astype(np.float64))
        best = int(p.argmax())
        return {"label": labels[best], "score": float(p[best]),
                "scores": {name: float(v) for name, v in zip(labels, p)}}

    def text_result(self, out, text, labels):
        scores = out["scores"][0].astype(np.float64)
        return {"label": str(out["label"][0]), "score": float(out["score"][0]),
                "scores": {name: float(v) for name, v in zip(labels, scores)}}

    def raw_text(self, example):
        return example.text, example.text_pair

    def check_inputs(self, examples):
        texts = {"texts": [ex.text for ex in examples]}
        if "text_pair" in self.roles:
            texts["pairs"] = [ex.text_pair for ex in examples]
        return texts


@dataclass(frozen=True)
class Regression(Classification):
    """One real value per text (or pair): MSE, Pearson on dev."""

    def build(self, raw, files):
        return [], {s: [TextExample(r["text"], _float(r, files[s]), r.get("text_pair"))
                        for r in rows] for s, rows in raw.items()}

    def encode(self, examples, tokenizer, max_length, stride):
        return encode_texts(examples, tokenizer, max_length, target=float)

    def score(self, labels, examples, encoded, outputs):
        return metrics.regression(np.stack(outputs)[:, 0],
                                  np.array([f["labels"] for f in encoded.features]))

    def outcomes(self, labels, examples, encoded, outputs):
        return metrics.outcomes_regression(
            np.stack(outputs)[:, 0], np.array([f["labels"] for f in encoded.features]))

    def serve_result(self, logits, encodings, given, labels):
        return {"value": float(logits.reshape(-1)[0])}

    def text_result(self, out, text, labels):
        return {"value": float(out["value"][0])}

    def check_inputs(self, examples):
        return None


def _is_fraction(label: str) -> bool:
    """'3.5' or '-0.25' (a score), not '3', '3.0' or 'pos'."""
    try:
        value = float(label)
    except ValueError:
        return False
    return value == value and not value.is_integer()


def _float(row: dict, path: Path) -> float:
    try:
        value = float(row["label"])
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):  # float() takes 'nan' and 'inf'; a loss does not
        raise UserError(f"{path}: {row['_where']}: regression target '{row['label']}' "
                        f"is not a number")
    return value
