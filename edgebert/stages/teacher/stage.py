"""Fine-tune a BERT checkpoint on a task: the teacher stage.

Reads a model source (packaged name, local directory or hub id) and a task;
writes an artifact directory that `from_pretrained` opens:

    <out>/config.json model.safetensors tokenizer.json ... stage.json metrics.json
"""

from __future__ import annotations

from pathlib import Path

from edgebert import artifact, task_training
from edgebert.config import to_dict
from edgebert.data.tasks import load_task
from edgebert.modeling import check_vocab, load_for_task, load_tokenizer
from edgebert.sources import resolve_model
from edgebert.stages.teacher.config import FinetuneConfig


def run(cfg: FinetuneConfig, log=print, *, restart: bool = False) -> Path:
    """Fine-tune `cfg.model` on `cfg.task` into `cfg.out`; skip if already finished.

    >>> # run(FinetuneConfig(model="minilm-l6", out="runs/rt/teacher"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "finetune"):
        return out
    # Every input is checked before anything is written, so bad input leaves no trace.
    task = load_task(cfg.task)
    source = resolve_model(cfg.model)
    tokenizer = load_tokenizer(source)
    import torch

    torch.manual_seed(cfg.train.seed)  # the new head's initialisation is part of the seed
    model = load_for_task(source, task.kind, task.labels)
    check_vocab(model, tokenizer, source)
    data = task_training.prepare(task, tokenizer, cfg.max_length, log)
    with artifact.building(out, "finetune", to_dict(cfg), [source], restart) as work:
        metrics = task_training.fit(model, data, lambda m, b: {"loss": m(**b).loss}, cfg.train,
                                    work, desc=f"finetune {task.name}")
        log(f"dev {task.metric} {metrics['dev'][task.metric]:.4f}, "
            f"test {task.metric} {metrics['test'][task.metric]:.4f} "
            f"({metrics['train']['seconds']:.0f} s)")
        record = {"stage": "finetune", "parent": cfg.model, "parent_path": source,
                  "task": task_training.task_record(task, cfg.task, cfg.max_length),
                  "config": to_dict(cfg)}
        return task_training.save(work, out, model, tokenizer, record, metrics)
