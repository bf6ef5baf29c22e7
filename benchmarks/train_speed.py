"""Seconds per distillation step of the default student, four ways, interleaved step by step
in one process: the teacher run live on each batch or its logits stored once per example
(edgebert.soft_targets), each in fp32 and in bf16 autocast (where the CPU has bf16).

    python benchmarks/train_speed.py [TEACHER_DIR] [--steps 40]

TEACHER_DIR: a fine-tuned teacher artifact (default runs/default/teacher, README command 1's).
Batch 32 of the task's training features in the recipe's order of lengths, AdamW, the
recipe's student (layers 0, 2, 4) and loss (KL at T=2 plus half the hard-label loss).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from common import record, script_command

SUITE = "train_speed"
BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", nargs="?", default="runs/default/teacher")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per way")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per way first (kernels are built on first use)")
    args = parser.parse_args()

    import torch

    from edgebert import soft_targets, task_training
    from edgebert.config import TrainConfig
    from edgebert.cpu import BF16_FLAGS, cpu_flags
    from edgebert.data.features import TEACHER_LOGITS
    from edgebert.data.tasks import load_task
    from edgebert.distillation import Trainable, layer_map, load_teacher, teacher_loss
    from edgebert.kinds import kind
    from edgebert.modeling import load_tokenizer
    from edgebert.stages.distill.config import DistillConfig
    from edgebert.stages.distill.stage import teacher_task
    from edgebert.stages.distill.students import build_student
    from edgebert.train import _adamw

    torch.set_num_threads(2)
    task_cfg, max_length = teacher_task(args.teacher)
    task = load_task(task_cfg)
    teacher = load_teacher(args.teacher, task.kind, eager=False)
    cfg = DistillConfig(teacher=args.teacher, layers=[0, 2, 4], out="unused")
    student = build_student(teacher, cfg, task.kind, task.labels)
    data = task_training.prepare(task, load_tokenizer(args.teacher), max_length, log=lambda *_: None)
    steps = args.warmup + args.steps
    data.encoded["train"].features = data.encoded["train"].features[:BATCH * steps]
    live = list(data.encoded["train"].features)
    started = time.perf_counter()
    soft_targets.attach(data, teacher, cfg.loss, kind(task.kind), TrainConfig(precision="fp32"),
                        log=lambda *_: None)
    stored_once = time.perf_counter() - started
    stored = data.encoded["train"].features
    loss_fn = teacher_loss(teacher, task.kind, cfg.loss,
                           layer_map(3, teacher.config.num_hidden_layers))
    model = Trainable(student, None).train()
    optimizer = _adamw(model, TrainConfig(lr=1e-4), torch.device("cpu"))
    precisions = ["fp32"] + (["bf16"] if BF16_FLAGS & set(cpu_flags()["flags"]) else [])
    ways = {(t, p): [] for t in ("live", "stored") for p in precisions}
    for i in range(steps):
        for (teacher_outputs, precision), times in ways.items():
            feats = (live if teacher_outputs == "live" else stored)[i * BATCH:(i + 1) * BATCH]
            batch = data.collate(feats)
            assert (TEACHER_LOGITS in batch) == (teacher_outputs == "stored")
            cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" \
                else contextlib.nullcontext()
            t0 = time.perf_counter()
            with cast:
                out = loss_fn(model, batch)
            out["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    base = statistics.median(ways[("live", "fp32")])
    cases = {f"{t} teacher, {p}": {"ms_per_step": 1000 * statistics.median(v),
                                   "speedup_vs_live_fp32": base / statistics.median(v),
                                   "steps": len(v)}
             for (t, p), v in ways.items()}
    for name, c in cases.items():
        print(f"{name:24} {c['ms_per_step']:7.1f} ms/step  {c['speedup_vs_live_fp32']:.2f}x")
    record(SUITE, cases, command=script_command(__file__), threads=2,
           notes={"teacher": args.teacher, "batch": BATCH,
                  "stored_logits_seconds": round(stored_once, 2),
                  "stored_logits_examples": len(stored)})


if __name__ == "__main__":
    main()
