"""The distillation loss: the task kind's soft and hard terms, hidden-state and attention
alignment, weighted as the stage's loss config says. The primitives are edgebert.losses."""

from __future__ import annotations

import torch

from edgebert.config import DistillLossConfig
from edgebert.kinds import kind as task_kind
from edgebert.losses import hidden_cos, hidden_mse, soft_kl


def distill_loss(s_out: dict, t_out: dict, batch: dict, cfg: DistillLossConfig, kind: str,
                 mapping: list[int], proj: torch.nn.ModuleList | None = None) -> dict:
    """The weighted loss and each of its terms (for logging). `kind` is a task kind (its
    own soft and hard terms), or "mlm" for general distillation.

    `mapping[i]` is the teacher hidden-state index (1-based layer) that student
    layer i+1 mimics; index 0 (embeddings) maps to 0.
    """
    # one row per sequence, as the encoder sees them: [B, L], or [B * choices, L]
    mask = batch["attention_mask"].flatten(0, -2).float()
    s_logits = s_out["logits"]
    t_logits = t_out["logits"].detach() if t_out["logits"] is not None else None
    terms: dict[str, torch.Tensor] = {}
    if cfg.kl:
        if kind == "mlm":  # vocabulary distributions at the masked positions only
            terms["kl"] = soft_kl(s_logits, t_logits, cfg.temperature,
                                  (batch["labels"] != -100).float())
        else:
            terms["kl"] = task_kind(kind).soft_loss(s_logits, t_logits, batch, cfg.temperature)
    if cfg.ce:  # MLM: the model's own loss
        terms["ce"] = s_out["loss"] if kind == "mlm" else \
            task_kind(kind).hard_loss(s_logits, batch, s_out)
    if cfg.cos or cfg.hidden_mse:
        pairs = [(0, 0)] + [(i + 1, j) for i, j in enumerate(mapping)]
        cos, mse = [], []
        for i, j in pairs:
            s_h, t_h = s_out["hidden"][i], t_out["hidden"][j].detach()
            if proj is not None:
                s_h = proj[i](s_h)
            if cfg.cos:
                cos.append(hidden_cos(s_h, t_h, mask))
            if cfg.hidden_mse:
                mse.append(hidden_mse(s_h, t_h, mask))
        if cos:
            terms["cos"] = torch.stack(cos).mean()
        if mse:
            terms["hidden_mse"] = torch.stack(mse).mean()
    if cfg.attn_mse:
        key_mask = mask[:, None, None, :]  # compare attention over real keys only
        errs = [(((s_out["attentions"][i] - t_out["attentions"][j - 1].detach()) ** 2)
                 * key_mask).sum() / (key_mask.sum() * s_out["attentions"][i].shape[1]
                                      * s_out["attentions"][i].shape[2])
                for i, j in enumerate(mapping)]
        terms["attn_mse"] = torch.stack(errs).mean()
    loss = sum(getattr(cfg, name) * value for name, value in terms.items())
    return {"loss": loss} | {name: value.detach() for name, value in terms.items()}
