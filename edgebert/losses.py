"""Loss primitives over model outputs, shared by distillation, the task kinds' soft
targets and codebook tuning: torch only, nothing of EdgeBERT's.

`view(output)` turns any transformers output into {"logits", "hidden", "attentions"},
so loss code never reaches into model internals (TextBrewer's adaptor idea).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def view(output) -> dict:
    """logits: [B, C] (sequence), [B, L, C] (tokens), or [B, L, 2] (QA start/end)."""
    if getattr(output, "start_logits", None) is not None:
        logits = torch.stack([output.start_logits, output.end_logits], -1)
    else:
        logits = getattr(output, "logits", None)  # None for a bare encoder
    return {"logits": logits, "hidden": output.hidden_states, "attentions": output.attentions}


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
            mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """KL(teacher || student) of softened distributions over `dim`, times T^2.

    >>> x = torch.randn(4, 3); float(soft_kl(x, x, 2.0))
    0.0
    """
    s = F.log_softmax(student / temperature, dim)
    t = F.log_softmax(teacher / temperature, dim)
    kl = (t.exp() * (t - s)).sum(dim)
    if mask is not None:
        kl = (kl * mask).sum() / mask.sum().clamp(min=1)
    else:
        kl = kl.mean()
    return kl * temperature ** 2


def hidden_cos(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity, averaged over real (unpadded) tokens."""
    cos = F.cosine_similarity(s, t, dim=-1)
    return ((1 - cos) * mask).sum() / mask.sum().clamp(min=1)


def hidden_mse(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    err = ((s - t) ** 2).mean(-1)
    return (err * mask).sum() / mask.sum().clamp(min=1)
