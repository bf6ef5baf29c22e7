"""Build students: a subset of the teacher's layers (DistilBERT), or a narrower model.

A teacher whose layers share weights (ALBERT) gives a student fewer repetitions of the
same layer: there is nothing per layer to choose, and unsharing would multiply the
student's size by its depth for no gain in speed."""

from __future__ import annotations

import copy

import torch

from edgebert.errors import UserError
from edgebert.families import check_single_group, family_of
from edgebert.sources import resolve_model
from edgebert.stages.distill.config import DistillConfig


def every_other(n_layers: int) -> list[int]:
    """DistilBERT's choice: layers 0, 2, 4, ... of the teacher.

    >>> every_other(6), every_other(12)[:3]
    ([0, 2, 4], [0, 2, 4])
    """
    return list(range(0, n_layers, 2))


def from_teacher_layers(teacher, layers: list[int]):
    """A copy of `teacher` keeping only encoder `layers` (embeddings and heads copied).

    >>> # student = from_teacher_layers(teacher, [0, 2, 4])
    """
    n = teacher.config.num_hidden_layers
    bad = [i for i in layers if not 0 <= i < n]
    if bad:
        raise UserError(f"--layers: {bad} out of range; the teacher has layers 0..{n - 1}")
    family = family_of(teacher)
    if family.shared_layers:
        check_single_group(teacher.config)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    source = teacher.state_dict()
    pattern = family.layer_keys()  # None: shared layers, every key as it is
    weights = {}
    for key in student.state_dict():
        m = pattern.match(key) if pattern else None
        weights[key] = source[f"{m[1]}{layers[int(m[2])]}{m[3]}" if m else key].clone()
    student.load_state_dict(weights)
    return student


def narrow(teacher, layers: int, hidden_size: int | None, heads: int | None,
           ffn: int | None, seed: int):
    """A fresh student of the teacher's class with smaller dimensions."""
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = layers
    config.hidden_size = hidden_size or config.hidden_size
    config.num_attention_heads = heads or config.num_attention_heads
    width = family_of(teacher).ffn_width
    setattr(config, width, ffn or getattr(config, width))
    if config.hidden_size % config.num_attention_heads:
        raise UserError(f"--hidden-size {config.hidden_size} is not a multiple of --heads "
                        f"{config.num_attention_heads}")
    torch.manual_seed(seed)
    return type(teacher)(config)


def build_student(teacher, cfg: DistillConfig, kind: str | None = None,
                  labels: list[str] | None = None):
    """The student `cfg` asks for: `cfg.student` with a `kind` head (`labels`), a narrower
    model (`cfg.narrow`), or the teacher's `cfg.layers` (every other one by default)."""
    n = teacher.config.num_hidden_layers
    if cfg.student:  # e.g. the encoder general distillation wrote; a task head is added
        from edgebert.modeling import load_for_task

        student = load_for_task(resolve_model(cfg.student), kind, labels)
        if student.config.vocab_size != teacher.config.vocab_size:
            raise UserError(f"--student {cfg.student}: vocabulary of {student.config.vocab_size} "
                            f"tokens, the teacher's has {teacher.config.vocab_size}; both must "
                            f"read the same token ids")
        return student
    if cfg.narrow:
        count = len(cfg.layers) if cfg.layers else max(1, n // 2)
        return narrow(teacher, count, cfg.hidden_size, cfg.heads, cfg.ffn, cfg.train.seed)
    return from_teacher_layers(teacher, cfg.layers or every_other(n))
