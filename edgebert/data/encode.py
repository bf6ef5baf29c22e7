"""Turn task examples into model features, and batches of features into tensors.

A feature is a dict of plain lists (`input_ids`, `attention_mask`,
`token_type_ids`, and the head's targets); `collate` pads a batch to its
longest member, which on CPU is much faster than padding to `max_length`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from edgebert.data.tasks import QAExample, Task, TextExample, TokenExample

MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids",
              "labels", "start_positions", "end_positions")
IGNORE = -100  # label of sub-word pieces and special tokens in token classification


@dataclass
class Encoded:
    """Features of one split, and what evaluation needs to map them back."""

    features: list[dict]
    truncated: int = 0
    """Examples that lost tokens to max_length."""
    extra: list[dict] = field(default_factory=list)
    """Per feature, not fed to the model: word ids (ner), offsets and example index (qa)."""


def encode(task: Task, split: str, tokenizer, max_length: int, stride: int = 64) -> Encoded:
    examples = task.splits[split]
    if task.kind == "ner":
        return _encode_tokens(examples, tokenizer, max_length)
    if task.kind == "qa":
        return _encode_qa(examples, tokenizer, max_length, stride)
    return _encode_text(examples, tokenizer, max_length, regression=task.kind == "regression")


def _encode_text(examples: list[TextExample], tok, max_length: int, regression: bool) -> Encoded:
    texts = [ex.text for ex in examples]
    pairs = [ex.text_pair for ex in examples] if examples and examples[0].text_pair is not None \
        else None
    full = tok(texts, pairs)["input_ids"]
    enc = tok(texts, pairs, truncation=True, max_length=max_length)
    feats = []
    for i, ex in enumerate(examples):
        feat = {k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids")}
        feat["labels"] = float(ex.label) if regression else int(ex.label)
        feats.append(feat)
    truncated = sum(len(f) > max_length for f in full)
    return Encoded(feats, truncated)


def _encode_tokens(examples: list[TokenExample], tok, max_length: int) -> Encoded:
    enc = tok([ex.tokens for ex in examples], is_split_into_words=True,
              truncation=True, max_length=max_length)
    feats, extra, truncated = [], [], 0
    for i, ex in enumerate(examples):
        word_ids = enc.word_ids(i)
        labels, prev = [], None
        for w in word_ids:  # label the first piece of each word; ignore the rest
            labels.append(ex.tags[w] if w is not None and w != prev else IGNORE)
            prev = w
        kept = {w for w in word_ids if w is not None}
        truncated += len(kept) < len(ex.tokens)
        feats.append({k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids")}
                     | {"labels": labels})
        extra.append({"word_ids": word_ids})
    return Encoded(feats, truncated, extra)


def _encode_qa(examples: list[QAExample], tok, max_length: int, stride: int) -> Encoded:
    """Long contexts become several windows overlapping by `stride` tokens."""
    enc = tok([ex.question for ex in examples], [ex.context for ex in examples],
              truncation="only_second", max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True)
    feats, extra = [], []
    for j in range(len(enc["input_ids"])):
        i = enc["overflow_to_sample_mapping"][j]
        seq = enc.sequence_ids(j)
        offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][j], seq)]
        start_char, answer = examples[i].answers[0]
        end_char = start_char + len(answer)
        start = end = 0  # [CLS]: the answer is not in this window
        ctx = [k for k, o in enumerate(offsets) if o is not None]
        if ctx and offsets[ctx[0]][0] <= start_char and offsets[ctx[-1]][1] >= end_char:
            start = next(k for k in ctx if offsets[k][1] > start_char)
            end = next(k for k in reversed(ctx) if offsets[k][0] < end_char)
        feats.append({k: enc[k][j] for k in ("input_ids", "attention_mask", "token_type_ids")}
                     | {"start_positions": start, "end_positions": end})
        extra.append({"example": i, "offsets": offsets})
    windows = len(feats) - len(examples)
    return Encoded(feats, windows, extra)


def pad_batch(features: list[dict], pad_id: int, keys=MODEL_KEYS) -> dict[str, np.ndarray]:
    """Pad a batch to its longest sequence, as int64 / float32 numpy arrays."""
    width = max(len(f["input_ids"]) for f in features)
    pad_values = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    batch: dict[str, np.ndarray] = {}
    for key in features[0]:
        if key not in keys:
            continue
        values = [f[key] for f in features]
        if key in pad_values or isinstance(values[0], list):
            pad = pad_values.get(key, IGNORE)
            values = [v + [pad] * (width - len(v)) for v in values]
        dtype = np.float32 if isinstance(values[0], float) else np.int64
        batch[key] = np.asarray(values, dtype=dtype)
    return batch


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence; keep only what the model takes."""
    return {k: torch.from_numpy(v) for k, v in pad_batch(features, pad_id).items()}
