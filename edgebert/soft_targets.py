"""The teacher's soft targets, computed once per training example instead of once per step.

A frozen teacher in eval mode (no dropout) gives an example the same logits every time it
sees it, so distillation and pruning recovery run it over the training set once, before the
first step, and every later epoch reads the stored rows: on the default recipe the
teacher's forward was a third of a distillation step's time, repeated each of up to 10
epochs. Each row is cut to its example's own length (`predict.logits`) and padded again to
its batch's width in `edgebert.data.encode.collate`.

Where the loss needs more than the logits (hidden states, attention maps), or where the
kind's soft loss reads padded positions (extractive QA: distributions over every position
of the padded batch), the teacher still runs on each batch. A resumed run computes the
rows again (one teacher pass, deterministic), so nothing is stored on disk.
"""

from __future__ import annotations

import time

import numpy as np

from edgebert.data.features import TEACHER_LOGITS


READS_PADDING = frozenset({"kl_positions"})
"""Soft losses (`Kind.soft_loss`) over every position of the padded batch: the stored rows,
cut to each example's length, cannot give them."""


def cacheable(loss, kind) -> bool:
    """Whether the loss needs nothing but logits that do not depend on the batch's padding."""
    return (kind.soft_loss not in READS_PADDING
            and not (loss.cos or loss.hidden_mse or loss.attn_mse))


def attach(data, teacher, loss, kind, train_cfg, log=print) -> bool:
    """Store the teacher's logits on each of `data`'s training features (new dicts, so
    dev and test features stay as they are); False where the loss needs the teacher live.
    In the precision training runs in (`train_cfg`): a live teacher ran under the same
    autocast."""
    import torch

    from edgebert.predict import logits, torch_forward
    from edgebert.train import autocast_dtype, pick_device

    if not cacheable(loss, kind):
        return False
    device = pick_device(train_cfg)
    bf16 = device.type == "cpu" and autocast_dtype(train_cfg, device) == torch.bfloat16
    train = data.encoded["train"]
    started = time.perf_counter()
    rows = logits(torch_forward(teacher, autocast=bf16), train, data.pad_id, kind.name)
    train.features = [f | {TEACHER_LOGITS: row.astype(np.float32)}
                      for f, row in zip(train.features, rows)]
    log(f"teacher outputs for {len(rows):,} training examples computed once "
        f"({time.perf_counter() - started:.1f} s{', bf16' if bf16 else ''}); the teacher does "
        f"not run during training")
    return True
