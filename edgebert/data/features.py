"""Encoded features and their padding, for any rank. Torch-free.

A feature is a dict of plain lists: `input_ids`, `attention_mask`, `token_type_ids`
(one list of token ids, or one per choice for multiple choice) and the head's targets.
`pad_batch` pads a batch to its longest sequence, which on CPU is much faster than
padding to `max_length`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MODEL_KEYS = INPUTS + ("labels", "start_positions", "end_positions")
IGNORE = -100  # label of sub-word pieces and special tokens in token classification
PAD_VALUES = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0}  # None: pad id
TEACHER_LOGITS = "teacher_logits"
"""The feature key, and batch key, of the teacher's stored outputs (`edgebert.soft_targets`)."""


@dataclass
class Encoded:
    """Features of one split, and what evaluation needs to map them back."""

    features: list[dict]
    truncated: int = 0
    """Examples that lost tokens to max_length (qa: extra windows)."""
    extra: list[dict] = field(default_factory=list)
    """Per feature, not fed to the model: word ids (ner), offsets and example index (qa)."""
    index: list[int] | None = None
    """For a sample of a split: which of its features these are (`sample`)."""

    def sample(self, n: int, seed: int = 0) -> Encoded:
        """n features drawn without replacement (all where there are fewer), in split
        order, remembering their positions in `index`: the accuracy guards rank nodes on
        such a sample of dev, at a fifth of the cost of the whole split."""
        import random

        index = sorted(random.Random(seed).sample(range(len(self.features)),
                                                  min(n, len(self.features))))
        return Encoded([self.features[i] for i in index], 0,
                       [self.extra[i] for i in index] if self.extra else [], index)


def sequences(feature: dict) -> list[list[int]]:
    """A feature's token-id sequences: one, or one per choice for multiple choice."""
    ids = feature.get("input_ids", [])
    return ids if ids and isinstance(ids[0], list) else [ids]


def length(feature: dict) -> int:
    """Tokens in a feature's longest sequence."""
    return max(map(len, sequences(feature)))


def _pad(value, width: int, pad):
    """A list of token values, or a list of such lists, padded to `width`."""
    if value and isinstance(value[0], list):
        return [v + [pad] * (width - len(v)) for v in value]
    return value + [pad] * (width - len(value))


def pad_batch(features: list[dict], pad_id: int, keys=MODEL_KEYS) -> dict[str, np.ndarray]:
    """Pad a batch to its longest sequence, as int64 / float32 numpy arrays: [B, L] for
    one sequence per example, [B, C, L] for C choices. Per-token labels pad with IGNORE."""
    width = max(map(length, features))
    batch: dict[str, np.ndarray] = {}
    for key in features[0]:
        if key not in keys:
            continue
        values = [f[key] for f in features]
        if key in PAD_VALUES or isinstance(values[0], list):
            pad = PAD_VALUES.get(key, IGNORE)
            values = [_pad(v, width, pad_id if pad is None else pad) for v in values]
        dtype = np.float32 if isinstance(values[0], float) else np.int64
        batch[key] = np.asarray(values, dtype=dtype)
    return batch


def pad_rows(rows: list[np.ndarray], width: int) -> np.ndarray:
    """A batch of stored rows: stacked, per-token rows padded with zeros to `width` tokens
    (the kind's soft loss masks padded positions).

    >>> pad_rows([np.ones((2, 3)), np.ones((1, 3))], 2).shape
    (2, 2, 3)
    """
    if rows[0].ndim < 2:  # one row per example: classes, choices or a value
        return np.stack(rows)
    out = np.zeros((len(rows), width) + rows[0].shape[1:], dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out
