"""Loss primitives over model outputs, shared by distillation, the task kinds' terms and
codebook tuning: torch only, nothing of EdgeBERT's. A task kind names its terms
(`Kind.soft_loss`, `Kind.hard_loss`) and they are computed here, so the kinds, which the
runtime imports, never import torch.

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


def soft_loss(name: str, student: torch.Tensor, teacher: torch.Tensor, batch: dict,
              temperature: float) -> torch.Tensor:
    """The distillation term a task kind names (`Kind.soft_loss`) between student and
    teacher logits.

    >>> x = torch.randn(4, 1); float(soft_loss("mse", x, x, {}, 2.0))
    0.0
    """
    if name == "mse":  # [B, 1]: real values
        return F.mse_loss(student, teacher)
    if name == "kl_tokens":  # [B, L, C]: each real token's classes
        return soft_kl(student, teacher, temperature, batch["attention_mask"].float())
    if name == "kl_positions":  # [B, L, 2]: over positions (dim 1), for start and for end
        return soft_kl(student, teacher, temperature, dim=1)
    return soft_kl(student, teacher, temperature)  # "kl": [B, C], classes or choices


def hard_loss(name: str, logits: torch.Tensor, batch: dict, output: dict) -> torch.Tensor:
    """The supervised term a task kind names (`Kind.hard_loss`): "model", the model's own
    loss; "ce" or "mse" over the labeled rows only (augmented rows carry label -100), zero
    for a batch without labels, where transformers' mean would be NaN.

    >>> float(hard_loss("ce", torch.zeros(2, 3), {"labels": torch.tensor([-100, -100])}, {}))
    0.0
    """
    if name == "model":
        return output["loss"]
    labels = batch["labels"]
    known = labels != -100
    if not bool(known.any()):
        return logits.sum() * 0.0
    logits, labels = logits[known], labels[known]
    if name == "ce":
        return F.cross_entropy(logits, labels)
    return F.mse_loss(logits.reshape(-1), labels.to(logits.dtype))  # "mse": [B, 1] -> [B]
