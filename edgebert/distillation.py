"""Training a model against a frozen teacher: the distillation loss (the task kind's soft
and hard terms, hidden-state and attention alignment, weighted as the stage's loss config
says), the teacher it runs and the layer map between the two. Two stages train with it,
distill (a student from its teacher) and prune (recovery from a teacher), so it lives in
core; the primitives are edgebert.losses.
"""

from __future__ import annotations

import torch

from edgebert.config import DistillLossConfig
from edgebert.data.features import INPUTS, TEACHER_LOGITS
from edgebert.kinds import kind as task_kind
from edgebert.losses import hard_loss, hidden_cos, hidden_mse, soft_kl, soft_loss, view
from edgebert.modeling import from_pretrained, head_class


class Trainable(torch.nn.Module):
    """The student and the projections its hidden states need to match the teacher's width."""

    def __init__(self, student, proj: torch.nn.ModuleList | None):
        super().__init__()
        self.student = student
        self.proj = proj


def load_teacher(source: str, kind: str, eager: bool):
    """The teacher with `kind`'s head, in eval mode; `eager` attention where the loss
    compares attention maps (SDPA returns none)."""
    kwargs = {"attn_implementation": "eager"} if eager else {}
    return from_pretrained(head_class(kind), source, "teacher", **kwargs).eval()


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Teacher layer (1-based, as in `hidden_states`) that each student layer mimics.

    Uniform, as in TinyBERT: the last student layer mimics the last teacher layer.

    >>> layer_map(3, 6), layer_map(2, 6)
    ([2, 4, 6], [3, 6])
    """
    return [round((i + 1) * n_teacher / n_student) for i in range(n_student)]


def teacher_loss(teacher, kind: str, loss: DistillLossConfig, mapping: list[int]):
    """The loss over a `Trainable`: the frozen teacher's outputs on the same batch, stored
    once per example where `edgebert.soft_targets.attach` could, else computed here."""
    want_hidden = bool(loss.cos or loss.hidden_mse)
    want_attn = bool(loss.attn_mse)

    def loss_fn(module: Trainable, batch: dict) -> dict:
        stored = batch.pop(TEACHER_LOGITS, None)  # edgebert.soft_targets
        if stored is not None:
            t_out = {"logits": stored, "hidden": None, "attentions": None}
        else:
            inputs = {k: batch[k] for k in INPUTS if k in batch}
            with torch.no_grad():
                t_out = view(teacher(**inputs, output_hidden_states=want_hidden,
                                     output_attentions=want_attn))
        s_raw = module.student(**batch, output_hidden_states=want_hidden,
                               output_attentions=want_attn)
        return distill_loss(view(s_raw) | {"loss": s_raw.loss}, t_out, batch, loss, kind,
                            mapping, module.proj)

    return loss_fn


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
            terms["kl"] = soft_loss(task_kind(kind).soft_loss, s_logits, t_logits, batch,
                                    cfg.temperature)
    if cfg.ce:  # MLM: the model's own loss
        terms["ce"] = s_out["loss"] if kind == "mlm" else \
            hard_loss(task_kind(kind).hard_loss, s_logits, batch, s_out)
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
