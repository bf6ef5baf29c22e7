"""Turn a task's examples into model features (each kind's encoder), and batches of
features into tensors. Features and their padding: `edgebert.data.features`."""

from __future__ import annotations

from edgebert.data.features import (IGNORE, INPUTS, MODEL_KEYS, TEACHER_LOGITS, Encoded, length,
                                    pad_batch, pad_rows)
from edgebert.data.tasks import Task
from edgebert.kinds import kind

__all__ = ["IGNORE", "INPUTS", "MODEL_KEYS", "Encoded", "collate", "encode", "length",
           "pad_batch"]


def encode(task: Task, split: str, tokenizer, max_length: int, stride: int = 64) -> Encoded:
    """One split's features; `stride`: overlap of a long context's windows (qa)."""
    return kind(task.kind).encode(task.splits[split], tokenizer, max_length, stride)


def collate(features: list[dict], pad_id: int) -> dict:
    """Pad a batch to its longest sequence; keep only what the model takes (torch tensors)."""
    import torch

    batch = {k: torch.from_numpy(v) for k, v in pad_batch(features, pad_id).items()}
    if TEACHER_LOGITS in features[0]:  # the teacher's stored outputs (distillation)
        batch[TEACHER_LOGITS] = torch.from_numpy(pad_rows([f[TEACHER_LOGITS] for f in features],
                                                          batch["input_ids"].shape[-1]))
    return batch
