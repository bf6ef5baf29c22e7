"""The one training loop, in process, on a 2-layer BERT classifier."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from edgebert.config import TrainConfig
from edgebert.data.encode import collate
from edgebert.train import train


def tiny_classifier(dropout: float = 0.1) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))


def features(n=64):
    g = torch.Generator().manual_seed(1)
    feats = []
    for i in range(n):
        ids = [2] + torch.randint(5, 50, (6,), generator=g).tolist() + [3]
        ids[3] = 10 + (i % 2)  # the label is token 10 vs 11
        feats.append({"input_ids": ids, "attention_mask": [1] * 8, "token_type_ids": [0] * 8,
                      "labels": i % 2})
    return feats


def loss_fn(model, batch):
    return {"loss": model(**batch).loss}


def pad(fs):
    return collate(fs, pad_id=0)


def test_loss_falls():
    model, feats = tiny_classifier(), features()
    res = train(model, feats, loss_fn, TrainConfig(max_steps=40, batch_size=16, lr=3e-3),
                collate=pad, evaluate=lambda: {"loss": float(model(**pad(feats)).loss)},
                metric="loss", greater_is_better=False, desc="t")
    assert res.history[0]["train_loss"] > res.history[-1]["train_loss"]
    assert res.steps == 40


def test_early_stopping_keeps_the_best_weights():
    model, feats = tiny_classifier(), features()
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2])
    snapshots = []

    def evaluate():
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"accuracy": next(scores)}

    res = train(model, feats, loss_fn,
                TrainConfig(max_steps=50, batch_size=16, eval_every=2, patience=2, lr=1e-3),
                collate=pad, evaluate=evaluate, metric="accuracy")
    assert res.stopped_early and res.steps == 6 and res.best_step == 2
    assert res.best_metric == 0.9
    for k, v in model.state_dict().items():  # the model holds the weights of step 2
        assert torch.equal(v, snapshots[0][k]), k


def test_a_tied_metric_is_decided_by_the_tiebreak_score():
    """A saturated dev metric (sms-spam's F1 sat at 0.9825 for 5 evaluations): an equal
    metric with a lower tie-break loss is the new best and resets patience."""
    model, feats = tiny_classifier(), features()
    scores = iter([(0.9, 0.50), (0.9, 0.40), (0.9, 0.45), (0.9, 0.46), (0.8, 0.1)])
    snapshots = []

    def evaluate():
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        f1, loss = next(scores)
        return {"f1": f1, "log_loss": loss}

    res = train(model, feats, loss_fn,
                TrainConfig(max_steps=50, batch_size=16, eval_every=2, patience=2, lr=1e-3),
                collate=pad, evaluate=evaluate, metric="f1", tiebreak="log_loss")
    # without the tie-break: best at step 2, stopped at step 6
    assert res.best_step == 4 and res.stopped_early and res.steps == 8
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k]), k


def test_gradient_accumulation_matches_one_big_batch():
    """8 x 2 accumulated equals 16 x 1 (no dropout; equal micro-batches; fp32, since bf16's
    rounding differs between one batch of 16 and two of 8)."""
    results = []
    for batch, accum in ((16, 1), (8, 2)):
        model = tiny_classifier(dropout=0.0)
        train(model, features(), loss_fn,
              TrainConfig(max_steps=4, batch_size=batch, grad_accum=accum, lr=1e-3, warmup=0,
                          precision="fp32"),
              collate=pad)
        results.append(model.state_dict())
    for k in results[0]:
        assert torch.allclose(results[0][k], results[1][k], atol=1e-5), k


def test_warmup_then_linear_decay(monkeypatch):
    """lr per optimizer step: 2 warmup steps up to the peak, then linear to 0 (as HF)."""
    lrs, orig = [], torch.optim.AdamW.step

    def step(self, *a, **k):  # observe torch's optimizer; our code runs unchanged
        lrs.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    train(tiny_classifier(), features(), loss_fn,
          TrainConfig(max_steps=10, batch_size=16, lr=1.0, warmup=0.2), collate=pad)
    expected = [0.0, 0.5] + [(10 - s) / 8 for s in range(2, 10)]
    assert [round(x, 6) for x in lrs] == [round(x, 6) for x in expected]


def test_head_lr_moves_only_the_head_faster(monkeypatch):
    """head_lr: the classifier (outside `model.bert`) gets its own peak lr; the encoder
    keeps lr; both follow the same warmup and decay."""
    seen, orig = [], torch.optim.AdamW.step

    def step(self, *a, **k):  # observe torch's optimizer; our code runs unchanged
        seen.append(sorted((g["lr"], len(g["params"])) for g in self.param_groups))
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    model = tiny_classifier()
    head = {id(p) for p in model.classifier.parameters()}
    train(model, features(), loss_fn,
          TrainConfig(max_steps=4, batch_size=16, lr=1e-4, head_lr=1e-2, warmup=0.5),
          collate=pad)
    # step 2 (end of warmup): every group at its peak; the head's two tensors at 1e-2
    assert sum(n for lr, n in seen[2] if round(lr, 8) == 0.01) == len(head) == 2
    assert all(round(lr, 8) == 1e-4 for lr, _ in seen[2] if lr <= 1e-3)
    assert seen[3] == sorted((lr / 2, n) for lr, n in seen[2])  # decay: all halve alike


def test_bf16_autocast_path_runs_on_cpu():
    """The GPU's mixed-precision branch, exercised with CPU autocast."""
    model, feats = tiny_classifier(), features()
    res = train(model, feats, loss_fn, TrainConfig(max_steps=5, batch_size=16, lr=3e-3,
                                                   precision="bf16"),
                collate=pad, evaluate=lambda: {"loss": float(model(**pad(feats)).loss)},
                metric="loss", greater_is_better=False)
    assert res.steps == 5 and all(torch.isfinite(p).all() for p in model.parameters())


def test_group_by_length_is_a_permutation_with_tight_batches():
    import random

    from edgebert.train import _group_by_length

    rng = random.Random(0)
    feats = [{"input_ids": [1] * rng.randint(3, 120)} for _ in range(2000)]
    order = torch.randperm(2000, generator=torch.Generator().manual_seed(0)).tolist()
    grouped = _group_by_length(order, feats, 16, torch.Generator().manual_seed(1))
    assert sorted(grouped) == list(range(2000))

    def padding(o):  # padded tokens when each batch pads to its longest example
        return sum(16 * max(len(feats[j]["input_ids"]) for j in o[i:i + 16])
                   - sum(len(feats[j]["input_ids"]) for j in o[i:i + 16])
                   for i in range(0, len(o), 16))

    assert padding(grouped) < 0.1 * padding(order)


class Stopped(Exception):
    """A run stopped between two steps, as a kill stops it."""


def test_each_epoch_in_its_own_order_and_a_resume_there_ends_the_same(tmp_path):
    """64 examples in batches of 16: 4 steps an epoch, 12 steps in 3 epochs. A run stopped
    at step 7 (its last checkpoint is step 6, inside the second epoch) and started again
    ends with the weights of a run that was never stopped."""
    cfg = TrainConfig(max_steps=12, batch_size=16, lr=1e-3, save_every=2)
    batches = []

    def recorded(fs):  # which examples each step trains on, in order
        batches.append(sorted(tuple(f["input_ids"]) for f in fs))
        return pad(fs)

    whole = tiny_classifier()
    train(whole, features(), loss_fn, cfg, collate=recorded, checkpoint_dir=tmp_path / "a")
    epochs = [batches[i:i + 4] for i in (0, 4, 8)]
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled at every epoch
    assert all(sorted(sum(e, [])) == sorted(sum(epochs[0], [])) for e in epochs)  # all of it

    def stop_at_7(step, total):
        if step == 7:
            raise Stopped

    ckpt = tmp_path / "b"
    with pytest.raises(Stopped):
        train(tiny_classifier(), features(), loss_fn, cfg, collate=pad, checkpoint_dir=ckpt,
              after_step=stop_at_7)
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 1
    resumed = tiny_classifier()
    train(resumed, features(), loss_fn, cfg, collate=pad, checkpoint_dir=ckpt)
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
