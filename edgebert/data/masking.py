"""BERT's masked-language-model corruption, shared by pretraining and general distillation.

15 % of the real tokens are chosen (never special tokens or padding); of those
80 % become [MASK], 10 % a random token, 10 % stay; labels are -100 elsewhere.
"""

from __future__ import annotations

import torch


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                prob: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted inputs, labels). `special` is True at [CLS]/[SEP]/[PAD] positions.

    >>> ids = torch.arange(5, 105).reshape(2, 50); sp = torch.zeros_like(ids, dtype=torch.bool)
    >>> x, y = mask_tokens(ids, sp, 4, 200, generator=torch.Generator().manual_seed(0))
    >>> bool(((y == -100) | (y == ids)).all())
    True
    """
    def rand(shape):
        return torch.rand(shape, generator=generator, device="cpu").to(input_ids.device)

    chosen = (rand(input_ids.shape) < prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    r = rand(input_ids.shape)
    inputs = input_ids.clone()
    inputs[chosen & (r < 0.8)] = mask_id
    random_pos = chosen & (r >= 0.8) & (r < 0.9)
    randoms = torch.randint(0, vocab_size, input_ids.shape, generator=generator).to(input_ids.device)
    inputs[random_pos] = randoms[random_pos]
    return inputs, labels
