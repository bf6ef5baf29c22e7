"""The teacher's outputs stored once per training example: the distillation loss over a
padded batch is the loss the live teacher gives, for every kind that stores them; QA and
the hidden-state losses keep the teacher live; a distillation records what it did."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from edgebert import soft_targets, task_training
from edgebert.config import DistillLossConfig, TaskConfig, TrainConfig
from edgebert.cpu import cpu_flags
from edgebert.data.features import TEACHER_LOGITS
from edgebert.data.tasks import load_task
from edgebert.distillation import Trainable, load_teacher, teacher_loss
from edgebert.kinds import kind
from edgebert.modeling import load_tokenizer
from helpers import (choice_rows, finetune, ner_conll, run_cli, sentiment_rows, write_csv,
                     write_jsonl)


def prepared(model: Path, task: Path, kind_name: str):
    task = load_task(TaskConfig(str(task), kind_name))
    return task_training.prepare(task, load_tokenizer(model), 32, log=lambda *_: None), task


def losses(model: Path, task: Path, kind_name: str):
    """(live, stored) distillation losses of the teacher distilled into itself on mixed-length
    batches, where padding differs from the batches the rows were computed in."""
    data, task = prepared(model, task, kind_name)
    teacher = load_teacher(str(model), kind_name, eager=False)
    student = load_teacher(str(model), kind_name, eager=False)
    torch.manual_seed(0)
    with torch.no_grad():  # a student that differs from its teacher: the loss is not 0
        for p in student.parameters():
            p.add_(0.3 * torch.randn_like(p))
    loss = DistillLossConfig()
    fn = teacher_loss(teacher, kind_name, loss, [1, 2, 3, 4])
    feats = data.encoded["train"].features
    idx = random.Random(0).sample(range(len(feats)), 12)
    live = fn(Trainable(student.eval(), None), data.collate([feats[i] for i in idx]))
    assert soft_targets.attach(data, teacher, loss, kind(kind_name), TrainConfig(precision="fp32"),
                              log=lambda *_: None)
    stored_feats = data.encoded["train"].features
    batch = data.collate([stored_feats[i] for i in idx])
    assert TEACHER_LOGITS in batch
    stored = fn(Trainable(student.eval(), None), batch)
    assert TEACHER_LOGITS not in batch  # taken out before the student sees the batch
    return live, stored


@pytest.mark.parametrize("kind_name", ["classification", "ner", "multiple_choice"])
def test_stored_outputs_give_the_live_teachers_loss(kind_name, tiny_bert, tiny_teacher,
                                                    tmp_path):
    if kind_name == "classification":
        model, task = tiny_teacher, write_csv(tmp_path / "s.csv", sentiment_rows(60))
    else:
        task = (ner_conll(tmp_path / "n.conll") if kind_name == "ner"
                else write_jsonl(tmp_path / "c.jsonl", choice_rows(40)))
        model = tmp_path / "teacher"
        finetune(tiny_bert, task, model, "--kind", kind_name, "--epochs", "1")
    live, stored = losses(model, task, kind_name)
    assert float(live["kl"]) > 1e-4
    for term in ("loss", "kl", "ce"):
        assert float(stored[term].detach()) == pytest.approx(float(live[term].detach()),
                                                    rel=1e-4, abs=1e-6)


def test_the_teacher_stays_live_where_the_loss_needs_more_than_logits():
    assert not soft_targets.cacheable(DistillLossConfig(cos=1.0), kind("classification"))
    assert not soft_targets.cacheable(DistillLossConfig(attn_mse=1.0), kind("ner"))
    # QA's soft targets are distributions over every position of the padded batch
    assert not soft_targets.cacheable(DistillLossConfig(), kind("qa"))
    assert soft_targets.cacheable(DistillLossConfig(), kind("regression"))


def test_distillation_says_it_stored_the_outputs_and_its_precision(tiny_teacher, tmp_path):
    out = tmp_path / "student"
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--layers", "0,2",
                           "--max-steps", "6", "--threads", "1", "--out", out)
    assert code == 0, output
    assert "computed once" in output
    train = json.loads((out / "metrics.json").read_text())["train"]
    # auto: bf16 autocast where AMX-BF16 runs it, fp32 elsewhere
    assert train["precision"] == ("bf16" if "amx_bf16" in cpu_flags()["flags"] else "fp32")
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--layers", "0,2", "--cos",
                           "1", "--max-steps", "2", "--threads", "1", "--precision", "fp32",
                           "--out", tmp_path / "live")
    assert code == 0, output
    assert "computed once" not in output
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["train"][
        "precision"] == "fp32"
