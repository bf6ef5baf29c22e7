"""Fine-tune a BERT checkpoint on a task: the teacher stage.

Reads a model source (packaged name, local directory or hub id) and a task;
writes an artifact directory that `from_pretrained` opens:

    <out>/config.json model.safetensors tokenizer.json ... stage.json metrics.json
"""

from __future__ import annotations

import time
from pathlib import Path

from edgebert import artifact
from edgebert.config import FinetuneConfig, to_dict
from edgebert.data.encode import collate, encode
from edgebert.data.tasks import Task, load_task
from edgebert.modeling import check_vocab, count_params, load_for_task, load_tokenizer
from edgebert.predict import logits, score
from edgebert.sources import resolve_model


def finetune(cfg: FinetuneConfig, restart: bool = False, log=print) -> Path:
    """Fine-tune `cfg.model` on `cfg.task` into `cfg.out`; skip if already finished.

    >>> # finetune(FinetuneConfig(model="minilm-l6", out="runs/rt/teacher"))
    """
    out = Path(cfg.out)
    if artifact.is_complete(out):
        log(f"{out} is already finished (metrics.json present); skipping")
        return out
    # Every input is checked before anything is written, so bad input leaves no trace.
    task = load_task(cfg.task)
    source = resolve_model(cfg.model)
    tokenizer = load_tokenizer(source)
    import torch

    torch.manual_seed(cfg.train.seed)  # the new head's initialisation is part of the seed
    model = load_for_task(source, task.kind, task.labels)
    check_vocab(model, tokenizer, source)
    encoded = {s: encode(task, s, tokenizer, cfg.max_length) for s in task.splits}
    work = artifact.begin(out, "finetune", to_dict(cfg), inputs=[source], restart=restart)
    for split, enc in encoded.items():
        if enc.truncated and task.kind != "qa":
            log(f"{split}: {enc.truncated} of {len(task.splits[split])} examples truncated "
                f"to {cfg.max_length} tokens")
    pad = tokenizer.pad_token_id

    from edgebert.train import train  # torch-heavy import only once the inputs are good

    started = time.perf_counter()
    result = train(
        model, encoded["train"].features, lambda m, b: {"loss": m(**b).loss}, cfg.train,
        collate=lambda fs: collate(fs, pad),
        evaluate=lambda: score(task, "dev", encoded["dev"], logits(model, encoded["dev"], pad)),
        metric=task.metric, checkpoint_dir=work / "checkpoint", desc=f"finetune {task.name}")
    seconds = time.perf_counter() - started

    results = {split: score(task, split, encoded[split], logits(model, encoded[split], pad))
               for split in ("dev", "test")}
    model.save_pretrained(work, safe_serialization=True)
    tokenizer.save_pretrained(work)
    log(f"dev {task.metric} {results['dev'][task.metric]:.4f}, "
        f"test {task.metric} {results['test'][task.metric]:.4f} ({seconds:.0f} s)")
    stage = {"stage": "finetune", "parent": cfg.model, "parent_path": source,
             "task": task_record(task, cfg), "config": to_dict(cfg)}
    metrics = results | {"metric": task.metric, "params": count_params(model),
                         "size_mb": artifact.dir_size_mb(work),
                         "train": {"seconds": seconds, "steps": result.steps,
                                   "examples": len(task.splits["train"]),
                                   "truncated": encoded["train"].truncated,
                                   "best_step": result.best_step,
                                   "stopped_early": result.stopped_early,
                                   "history": result.history}}
    return artifact.finish(work, out, stage, metrics)


def task_record(task: Task, cfg: FinetuneConfig) -> dict:
    """What a later stage needs to rebuild the same task and splits."""
    return {"name": cfg.task.name, "kind": task.kind, "labels": task.labels,
            "columns": cfg.task.columns, "seed": cfg.task.seed, "max_length": cfg.max_length,
            "sizes": {s: len(v) for s, v in task.splits.items()}}
