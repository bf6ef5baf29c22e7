"""The prune-learned stage: a model artifact in (the teacher, or any model of the chain),
a smaller one out, whose cuts were learned against the teacher (CoFi).

1. masks (`edgebert.stages.prune.l0`) are trained with the model through the one training loop,
   on the task's distillation loss (teacher logits) plus a hidden-state MSE between a set
   of teacher layers and the student layers each one matches best, plus the Lagrangian
   that drives the masks' expected size to the target;
2. the masks are made deterministic and the model is cut (`l0.apply_`): a transformers
   directory like any other, with its heads, FFN width and layers really smaller;
3. recovery: distillation from the teacher without masks (the teacher's logits stored once,
   `edgebert.soft_targets`).

Each phase checkpoints inside `<out>.partial/checkpoint/` (masks/, cut/, recover/), so a
killed run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from edgebert import artifact, soft_targets, task_training
from edgebert.config import to_dict
from edgebert.data.features import INPUTS
from edgebert.distillation import Trainable, distill_loss, layer_map, load_teacher, teacher_loss
from edgebert.errors import UserError
from edgebert.kinds import kind as task_kind
from edgebert.losses import hidden_mse, view
from edgebert.metrics import reference
from edgebert.modeling import count_params, from_pretrained, head_class, save_pretrained
from edgebert.sources import resolve_model
from edgebert.stages.prune.config import LearnedPruneConfig
from edgebert.stages.prune.l0 import Masks, apply_
from edgebert.stages.prune.stage import open_prunable
from edgebert.stages.prune.structured import shapes


class MaskedStudent(torch.nn.Module):
    """What the mask phase trains: the model, its masks, and a projection to the teacher's
    width where the model is narrower."""

    def __init__(self, student, masks: Masks, proj: torch.nn.Linear | None):
        super().__init__()
        self.student, self.masks, self.proj = student, masks, proj


def teacher_layers(cfg: LearnedPruneConfig, n_teacher: int) -> list[int]:
    """The teacher layers (1-based) that the hidden-state term matches.

    >>> teacher_layers(LearnedPruneConfig(), 6), teacher_layers(LearnedPruneConfig(), 12)
    ([2, 3, 4, 6], [3, 6, 9, 12])
    """
    chosen = cfg.distill_layers or layer_map(min(4, n_teacher), n_teacher)
    if max(chosen) > n_teacher:
        raise UserError(f"--distill-layers: {chosen}; the teacher has layers 1..{n_teacher}")
    return chosen


def match_layers(losses: torch.Tensor, alive: list[bool]) -> list[int]:
    """CoFi's dynamic layer map: from the last teacher layer down, each matches the student
    layer of least loss among the live ones below the previous match (any live one where
    none is left below). `losses[t, s]`: teacher layer t against student layer s.

    >>> match_layers(torch.tensor([[0.1, 0.5, 0.9], [0.8, 0.2, 0.1]]), [True, True, True])
    [0, 2]
    >>> match_layers(torch.tensor([[0.1, 0.5, 0.9], [0.8, 0.2, 0.1]]), [True, True, False])
    [0, 1]
    """
    n_s = losses.shape[1]
    live = [i for i in range(n_s) if alive[i]] or list(range(n_s))
    below, picked = n_s, []
    for row in reversed(range(losses.shape[0])):
        order = losses[row].argsort().tolist()
        choice = next((i for i in order if i < below and i in live), None)
        if choice is None:
            choice = next(i for i in order if i in live)
        picked.append(choice)
        below = choice
    return picked[::-1]


def masked_loss(teacher, kind: str, cfg: LearnedPruneConfig, layers: list[int]):
    """The mask phase's loss over a MaskedStudent: prediction distillation (cfg.loss), the
    dynamically matched hidden-state MSE (cfg.layer_distill) and the Lagrangian."""
    hidden = cfg.layer_distill > 0

    def loss_fn(module: MaskedStudent, batch: dict) -> dict:
        masks = module.masks
        masks.resample()  # one draw of every gate per micro-batch
        inputs = {k: batch[k] for k in INPUTS if k in batch}
        with torch.no_grad():
            t_out = view(teacher(**inputs, output_hidden_states=hidden))
        s_raw = module.student(**batch, output_hidden_states=hidden)
        s_out = view(s_raw) | {"loss": s_raw.loss}
        out = distill_loss(s_out, t_out, batch, cfg.loss, kind, [])
        terms = {k: v for k, v in out.items() if k != "loss"}
        loss = out["loss"]
        if hidden:
            mask = batch["attention_mask"].flatten(0, -2).float()
            s_h = s_out["hidden"][1:]  # each layer's output (index 0: the embeddings)
            if module.proj is not None:
                s_h = [module.proj(h) for h in s_h]
            grid = torch.stack([torch.stack([hidden_mse(h, t_out["hidden"][t].detach(), mask)
                                             for h in s_h]) for t in layers])
            gates = masks.values(True)["layer"]
            alive = [bool(g > 0) for g in gates] if len(gates) else [True] * len(s_h)
            picked = match_layers(grid.detach(), alive)
            terms["layer"] = grid[torch.arange(len(layers)), picked].mean()
            loss = loss + cfg.layer_distill * terms["layer"]
        lagrangian, expected = masks.lagrangian(masks.target(cfg.sparsity, cfg.mask_steps))
        return {"loss": loss + lagrangian, **{k: v.detach() for k, v in terms.items()},
                "lagrangian": lagrangian.detach(), "sparsity": expected.detach()}

    return loss_fn


def run(cfg: LearnedPruneConfig, log=print, *, restart: bool = False) -> Path:
    """Learn masks on `cfg.model` against `cfg.teacher`, cut, recover, into `cfg.out`.

    >>> # run(LearnedPruneConfig(model="runs/rt/teacher", sparsity=0.6,
    >>> #                        teacher="runs/rt/teacher", out="runs/rt/learned"))
    """
    from edgebert.train import pick_device

    out = Path(cfg.out)
    if artifact.already_done(out, log, "prune-learned"):
        return out
    opened = open_prunable(cfg.model)
    t_source = resolve_model(cfg.teacher)
    teacher = load_teacher(t_source, opened.kind, eager=False)
    layers = teacher_layers(cfg, teacher.config.num_hidden_layers)
    model = from_pretrained(head_class(opened.kind), opened.path)
    parent = artifact.read_json(opened.path / "metrics.json")
    data = task_training.prepare(opened.task, opened.tokenizer, opened.max_length, log)
    with artifact.building(out, "prune-learned", to_dict(cfg),
                           [str(opened.path), str(t_source)], restart) as work:
        teacher.to(pick_device(cfg.train))
        before = shapes(model)
        cut_dir = work / "checkpoint" / "cut"

        if not (cut_dir / "kept.json").exists():  # phase 1: the masks, trained with the model
            torch.manual_seed(cfg.train.seed)
            masks = Masks(model, cfg.mask_lr)
            width = getattr(model.config, "hidden_size", None) or model.config.dim
            t_width = getattr(teacher.config, "hidden_size", None) or teacher.config.dim
            proj = torch.nn.Linear(width, t_width) if width != t_width else None
            module = MaskedStudent(model, masks, proj)
            masked = task_training.fit(module, data,
                                       masked_loss(teacher, opened.kind, cfg, layers),
                                       cfg.train, work, desc="masks", scored=model,
                                       after_step=masks.at_step, select_after=1.0,
                                       checkpoint=work / "checkpoint" / "masks")
            masked.pop("params")
            kept = apply_(model, masks, cfg.sparsity) | {"masked": masked}
            tmp = cut_dir.with_name("cut.tmp")
            save_pretrained(tmp, model, opened.tokenizer)
            artifact.write_json(tmp / "kept.json", kept)  # last: the cut is whole
            tmp.rename(cut_dir)
        kept = artifact.read_json(cut_dir / "kept.json")
        # the cut model as saved, in an uninterrupted run as in a resumed one
        model = from_pretrained(head_class(opened.kind), cut_dir)
        metric = opened.task.metric
        cut = {s: data.score(model, s) for s in ("dev", "test")}
        if kept["sparsity"] < cfg.sparsity - 0.05:
            log(f"the masks reached {kept['sparsity']:.1%} sparsity, short of the "
                f"{cfg.sparsity:.0%} target: raise --mask-lr or train the masks longer")
        log(f"cut {before['params']:,} -> {count_params(model):,} params (sparsity "
            f"{kept['sparsity']:.1%} of heads and FFN); dev {metric} before recovery "
            f"{cut['dev'][metric]:.4f}")

        recovery = replace(cfg.train, epochs=cfg.recover_epochs) if cfg.recover_epochs else None
        if recovery:  # phase 3: distillation without masks, the teacher's logits stored once
            soft_targets.attach(data, teacher, cfg.loss, task_kind(opened.kind), recovery, log)
            metrics = task_training.fit(Trainable(model, None), data,
                                        teacher_loss(teacher, opened.kind, cfg.loss, []),
                                        recovery, work, desc="recover", scored=model,
                                        checkpoint=work / "checkpoint" / "recover")
        else:
            metrics = cut | {"metric": metric, "params": count_params(model), "train": None}
        metrics |= {
            "parent": {"test": reference(parent["test"]), "params": parent["params"]},
            "retention": metrics["test"][metric] / max(parent["test"][metric], 1e-12),
            "dev_before_recovery": cut["dev"], "test_before_recovery": cut["test"],
            "masked": kept.pop("masked"), "shapes_before": before, "shapes": shapes(model),
            "learned": {"target_sparsity": cfg.sparsity, "reached_sparsity": kept["sparsity"],
                        **{k: v for k, v in kept.items() if k != "sparsity"}},
            "distillation": {"teacher": str(t_source), "teacher_layers": layers,
                             "layer_distill": cfg.layer_distill, "loss": to_dict(cfg.loss),
                             "mask_lr": cfg.mask_lr, "mask_steps": cfg.mask_steps,
                             "recover_epochs": cfg.recover_epochs}}
        log(f"test {metric} {metrics['test'][metric]:.4f} vs parent {parent['test'][metric]:.4f}: "
            f"retention {metrics['retention']:.2%}")
        record = {"stage": "prune-learned", "parent": cfg.model, "task": opened.record["task"],
                  "config": to_dict(cfg)}
        return task_training.save(work, out, model, opened.tokenizer, record, metrics)
