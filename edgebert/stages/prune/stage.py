"""The prune stage: model artifact in, smaller model artifact out, after recovery.

Structured pruning ranks heads and FFN neurons on training batches and removes
them physically; unstructured pruning zeroes weights on a cubic schedule while
recovery trains (fine-tuning on labels, or distillation from a teacher).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from edgebert import artifact, soft_targets, task_training
from edgebert.artifacts_io import open_artifact
from edgebert.config import to_dict
from edgebert.distillation import Trainable, layer_map, load_teacher, teacher_loss
from edgebert.errors import UserError
from edgebert.kinds import kind as task_kind
from edgebert.metrics import reference
from edgebert.modeling import count_params, from_pretrained, head_class
from edgebert.sources import resolve_model
from edgebert.stages.prune.config import PruneConfig
from edgebert.stages.prune.importance import importance
from edgebert.stages.prune.magnitude import MagnitudePruner, sparsity_report
from edgebert.stages.prune.structured import (
    choose_ffn,
    choose_heads,
    drop_layers_,
    prune_ffn_,
    prune_heads_,
    shapes,
)


def open_prunable(model: str):
    """The artifact to prune; one line where it has no PyTorch weights (an ONNX export)."""
    opened = open_artifact(model)
    if not (opened.path / "model.safetensors").exists():
        raise UserError(f"{model}: pruning needs PyTorch weights (model.safetensors)")
    return opened


def run(cfg: PruneConfig, log=print, *, restart: bool = False) -> Path:
    """Prune `cfg.model` into `cfg.out`.

    >>> # run(PruneConfig(model="runs/rt/student", heads=0.5, ffn=0.5, out="runs/rt/pruned"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "prune"):
        return out
    opened = open_prunable(cfg.model)

    # eager attention: the head mask that ranks heads is ignored by SDPA
    model = from_pretrained(head_class(opened.kind), opened.path, attn_implementation="eager")
    parent = artifact.read_json(opened.path / "metrics.json")
    data = task_training.prepare(opened.task, opened.tokenizer, opened.max_length, log)
    teacher = None
    if cfg.recover == "distill":
        t_source = resolve_model(cfg.teacher)
        teacher = load_teacher(t_source, opened.kind, eager=cfg.loss.attn_mse > 0)
    with artifact.building(out, "prune", to_dict(cfg), [str(opened.path)], restart) as work:
        shapes_before = shapes(model)
        removed: dict = {}
        if cfg.heads or cfg.ffn:
            torch.manual_seed(cfg.train.seed)
            feats = random.Random(cfg.train.seed).sample(
                data.encoded["train"].features,
                min(len(data.encoded["train"].features), cfg.importance_batches * 16))
            batches = [data.collate(feats[i:i + 16]) for i in range(0, len(feats), 16)]
            head_imp, ffn_imp = importance(model, batches)
            if cfg.heads:
                removed["heads"] = choose_heads(head_imp, cfg.heads, cfg.scope)
                prune_heads_(model, removed["heads"])
            if cfg.ffn:
                keep = choose_ffn(ffn_imp, cfg.ffn)
                prune_ffn_(model, keep)
                removed["ffn_kept_per_layer"] = len(keep[0])
        if cfg.drop_layers:
            drop_layers_(model, cfg.drop_layers)
            removed["layers"] = cfg.drop_layers
        pruned_untrained = data.score(model, "dev")
        log(f"pruned {shapes_before['params']:,} -> {count_params(model):,} params; dev "
            f"{opened.task.metric} before recovery {pruned_untrained[opened.task.metric]:.4f}")

        pruner = MagnitudePruner(model, cfg.sparsity, cfg.sparsity_scope) if cfg.sparsity else None
        if cfg.recover == "none":
            if pruner:
                pruner.bake()
            metrics = {s: data.score(model, s) for s in ("dev", "test")} | {
                "metric": opened.task.metric, "params": count_params(model), "train": None}
        else:
            if cfg.recover == "distill":
                from edgebert.train import pick_device

                teacher.to(pick_device(cfg.train))
                soft_targets.attach(data, teacher, cfg.loss, task_kind(opened.kind), cfg.train,
                                    log)
                mapping = layer_map(model.config.num_hidden_layers,
                                    teacher.config.num_hidden_layers)
                loss_fn = teacher_loss(teacher, opened.kind, cfg.loss, mapping)
                trainable = Trainable(model, None)
            else:
                loss_fn, trainable = (lambda m, b: {"loss": m(**b).loss}), model
            # gradual sparsity: only models at the final sparsity may be kept as the best, and
            # patience starts counting there (a first run here kept step 100 of 960, at 8 %
            # sparsity, and baking 80 % into it gave chance accuracy)
            metrics = task_training.fit(trainable, data, loss_fn, cfg.train, work,
                                        desc="recover", scored=model, after_step=pruner,
                                        select_after=pruner.end if pruner else 0.0)
            if pruner:  # masks at the target, applied for good (the weights already hold them)
                pruner.bake()
                metrics |= {s: data.score(model, s) for s in ("dev", "test")}
        metric = opened.task.metric
        metrics |= {"parent": {"test": reference(parent["test"]), "params": parent["params"]},
                    "retention": metrics["test"][metric] / max(parent["test"][metric], 1e-12),
                    "dev_before_recovery": pruned_untrained, "shapes": shapes(model),
                    "removed": removed}
        if pruner:
            metrics["sparsity"] = sparsity_report(model)
        log(f"test {metric} {metrics['test'][metric]:.4f} vs parent {parent['test'][metric]:.4f}: "
            f"retention {metrics['retention']:.2%}")
        record = {"stage": "prune", "parent": cfg.model, "task": opened.record["task"],
                  "config": to_dict(cfg)}
        return task_training.save(work, out, model, opened.tokenizer, record, metrics)
