"""The distillation stage: teacher artifact in, student artifact out.

The student is trained on the teacher's task through the shared loop with
`distillation.distill_loss`; the teacher runs frozen in eval mode on the same batches.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgebert import artifact, soft_targets, task_training
from edgebert.config import TaskConfig, to_dict
from edgebert.data.tasks import load_task
from edgebert.distillation import Trainable, layer_map, load_teacher, teacher_loss
from edgebert.errors import UserError
from edgebert.kinds import KINDS, kind
from edgebert.metrics import reference
from edgebert.modeling import check_vocab, load_tokenizer
from edgebert.sources import resolve_model
from edgebert.stages.distill.config import DistillConfig
from edgebert.stages.distill.students import build_student, every_other


def teacher_task(teacher_dir: str) -> tuple[TaskConfig, int]:
    record = artifact.read_json(Path(teacher_dir) / "stage.json").get("task")
    if not record:
        raise UserError(f"{teacher_dir}/stage.json: no task record; distil from an "
                        f"`edgebert finetune` artifact")
    return TaskConfig.from_record(record), record["max_length"]


def run(cfg: DistillConfig, log=print, *, restart: bool = False) -> Path:
    """Distil `cfg.teacher` into a student at `cfg.out` on the teacher's task; skip if
    already finished. (With `cfg.corpus`, general distillation: `edgebert.stages.distill.general`.)

    >>> # run(DistillConfig(teacher="runs/rt/teacher", layers=[0, 2, 4], out="runs/rt/student"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "distill"):
        return out
    source = resolve_model(cfg.teacher)
    task_cfg, max_length = teacher_task(source)
    if cfg.task and cfg.task != task_cfg.name:
        task_cfg = TaskConfig(cfg.task, task_cfg.kind, task_cfg.columns, task_cfg.seed,
                              task_cfg.limit)
    task = load_task(task_cfg)
    known = artifact.read_json(Path(source) / "stage.json")["task"]["labels"]
    if task.labels != known:
        raise UserError(f"--task {task_cfg.name}: labels {task.labels} differ from the "
                        f"teacher's {known}")
    tokenizer = load_tokenizer(source)
    teacher = load_teacher(source, task.kind, eager=cfg.loss.attn_mse > 0)
    check_vocab(teacher, tokenizer, source)
    torch.manual_seed(cfg.train.seed)
    student = build_student(teacher, cfg, task.kind, task.labels)
    factorized = None
    if cfg.factorize_embeddings:
        from edgebert.factorize import factorize_

        factorized = factorize_(student, cfg.factorize_embeddings)
        log(f"embeddings factorized to rank {factorized['rank']}: "
            f"{factorized['params_before'] / 1e6:.2f} M -> "
            f"{factorized['params_after'] / 1e6:.2f} M parameters, relative SVD error "
            f"{factorized['relative_error']:.3f} before recovery")
    s_cfg, t_cfg = student.config, teacher.config
    if cfg.loss.attn_mse and s_cfg.num_attention_heads != t_cfg.num_attention_heads:
        raise UserError(f"--attn-mse: the student has {s_cfg.num_attention_heads} heads and "
                        f"the teacher {t_cfg.num_attention_heads}; attention maps need equal counts")
    proj = None
    if (cfg.loss.cos or cfg.loss.hidden_mse) and s_cfg.hidden_size != t_cfg.hidden_size:
        proj = torch.nn.ModuleList(torch.nn.Linear(s_cfg.hidden_size, t_cfg.hidden_size)
                                   for _ in range(s_cfg.num_hidden_layers + 1))
    mapping = layer_map(s_cfg.num_hidden_layers, t_cfg.num_hidden_layers)
    if (cfg.augment or cfg.augment_file) and not kind(task.kind).augment:
        raise UserError(f"--augment: supported for "
                        f"{', '.join(k.name for k in KINDS.values() if k.augment)} tasks, not "
                        f"{task.kind}")
    data = task_training.prepare(task, tokenizer, max_length, log)
    if cfg.augment or cfg.augment_file:
        from edgebert.data.encode import encode
        from edgebert.data.tasks import Task
        from edgebert.stages.distill.augment import augmented

        extra = augmented(task.splits["train"], cfg.augment, tokenizer.mask_token,
                          cfg.train.seed, cfg.augment_file)
        enc = encode(Task(task.name, task.kind, task.labels, {"train": extra}), "train",
                     tokenizer, max_length)
        data.encoded["train"].features = data.encoded["train"].features + enc.features
        log(f"augmented: {len(extra)} unlabeled texts beside {len(task.splits['train'])} "
            f"labeled ones")
    with artifact.building(out, "distill", to_dict(cfg), [source], restart) as work:
        from edgebert.train import pick_device

        teacher.to(pick_device(cfg.train))
        soft_targets.attach(data, teacher, cfg.loss, kind(task.kind), cfg.train, log)
        loss_fn = teacher_loss(teacher, task.kind, cfg.loss, mapping)
        metrics = task_training.fit(Trainable(student, proj), data, loss_fn, cfg.train, work,
                                    desc=f"distill {len(mapping)}L", scored=student)
        teacher_metrics = artifact.read_json(Path(source) / "metrics.json")
        metric = task.metric
        metrics["teacher"] = {"test": reference(teacher_metrics["test"]),
                              "params": teacher_metrics["params"]}
        metrics["retention"] = metrics["test"][metric] / max(teacher_metrics["test"][metric],
                                                             1e-12)
        if factorized:
            metrics["factorized_embeddings"] = factorized
        log(f"student test {metric} {metrics['test'][metric]:.4f} vs teacher "
            f"{teacher_metrics['test'][metric]:.4f}: retention {metrics['retention']:.2%}")
        record = {"stage": "distill", "parent": cfg.teacher, "parent_path": source,
                  # the task trained on
                  "task": task_training.task_record(task, task_cfg, max_length),
                  "layers": None if cfg.narrow or cfg.student
                  else (cfg.layers or every_other(t_cfg.num_hidden_layers)),
                  "layer_map": mapping, "config": to_dict(cfg)}
        return task_training.save(work, out, student, tokenizer, record, metrics)
