"""Distillation on tiny models: losses, layer selection, the stage, vocabulary trimming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from edgebert.config import DistillLossConfig
from edgebert.distillation import distill_loss, layer_map
from edgebert.losses import soft_kl, view
from edgebert.stages.distill.students import from_teacher_layers, narrow


@pytest.fixture
def teacher(tiny_teacher) -> Path:
    return tiny_teacher


def load(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager")


def batch_for(model, n=8):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (n, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.arange(n) % 2}


def test_kl_is_zero_when_student_is_teacher(teacher):
    model = load(teacher).eval()
    b = batch_for(model)
    out = model(**b, output_hidden_states=True, output_attentions=True)
    cfg = DistillLossConfig(kl=1, ce=0, cos=1, hidden_mse=1, attn_mse=1)
    terms = distill_loss(view(out) | {"loss": out.loss}, view(out), b, cfg, "classification",
                         layer_map(4, 4))
    assert float(terms["kl"]) == pytest.approx(0, abs=1e-6)
    assert float(terms["cos"]) == pytest.approx(0, abs=1e-5)
    assert float(terms["hidden_mse"]) == pytest.approx(0, abs=1e-8)
    assert float(terms["attn_mse"]) == pytest.approx(0, abs=1e-8)
    x = torch.randn(3, 5)
    assert float(soft_kl(x + 1, x, 3.0)) == pytest.approx(0, abs=1e-6)  # shift-invariant
    assert float(soft_kl(torch.zeros(3, 5), x, 3.0)) > 0


def test_layer_selection_copies_the_right_weights(teacher):
    t = load(teacher)
    s = from_teacher_layers(t, [0, 2])
    assert s.config.num_hidden_layers == 2
    for si, ti in ((0, 0), (1, 2)):
        for (k, v), (_, w) in zip(s.bert.encoder.layer[si].state_dict().items(),
                                  t.bert.encoder.layer[ti].state_dict().items()):
            assert torch.equal(v, w), k
    assert torch.equal(s.classifier.weight, t.classifier.weight)
    assert torch.equal(s.bert.embeddings.word_embeddings.weight,
                       t.bert.embeddings.word_embeddings.weight)
    assert layer_map(2, 4) == [2, 4]


@pytest.mark.parametrize("term", DistillLossConfig.WEIGHTS)
def test_every_loss_goes_down(teacher, term):
    t = load(teacher).eval()
    torch.manual_seed(0)
    if term == "hidden_mse":  # narrower student: the loss goes through a projection
        s = narrow(t, 2, hidden_size=16, heads=2, ffn=32, seed=0)
        proj = torch.nn.ModuleList(torch.nn.Linear(16, 32) for _ in range(3))
    else:  # fresh weights: far from the teacher, so every term starts large
        s, proj = narrow(t, 2, None, None, None, seed=0), None
    s.eval()  # no dropout noise: the loss curve is deterministic
    cfg = DistillLossConfig(**{k: float(k == term) for k in DistillLossConfig.WEIGHTS})
    params = list(s.parameters()) + (list(proj.parameters()) if proj else [])
    opt = torch.optim.AdamW(params, lr=3e-3)
    b = batch_for(t)
    with torch.no_grad():
        t_out = view(t(**{k: v for k, v in b.items() if k != "labels"},
                       output_hidden_states=True, output_attentions=True))
    losses = []
    for _ in range(15):
        raw = s(**b, output_hidden_states=True, output_attentions=True)
        loss = distill_loss(view(raw) | {"loss": raw.loss}, t_out, b, cfg, "classification",
                            layer_map(2, 4), proj)["loss"]
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.7 * losses[0], losses


def test_distill_stage_writes_a_student(teacher, tmp_path):
    out = tmp_path / "student"
    # a small set: (min_examples / n) ** 2 epochs: 400 over 160 examples is 6.25 passes
    code, output = run_cli("distill", "--teacher", teacher, "--layers", "0,2", "--out", out,
                           "--epochs", "1", "--min-examples", "400", "--epoch-growth", "2",
                           "--max-auto-epochs", "10", "--batch-size", "16", "--lr", "3e-3",
                           "--cos", "1", "--threads", "1")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    n = m["train"]["examples"]
    assert n == 160
    passes = m["train"]["steps"] / -(-n // 16)
    assert passes == pytest.approx((400 / n) ** 2, abs=1 / -(-n // 16))
    stage = json.loads((out / "stage.json").read_text())
    assert stage["layers"] == [0, 2] and stage["layer_map"] == [2, 4]
    assert m["params"] < m["teacher"]["params"]
    assert m["retention"] == pytest.approx(m["test"]["accuracy"] / m["teacher"]["test"]["accuracy"])
    assert load(out).config.num_hidden_layers == 2
    code, output = run_cli("distill", "--teacher", teacher, "--layers", "0,9", "--out",
                           tmp_path / "bad")
    assert code == 2 and "out of range" in output and not (tmp_path / "bad").exists()


def test_distill_on_another_task_records_that_task(teacher, tmp_path):
    from helpers import sentiment_rows, write_csv

    other = write_csv(tmp_path / "other.csv", sentiment_rows(60, seed=7))  # same labels
    out = tmp_path / "student"
    code, output = run_cli("distill", "--teacher", teacher, "--layers", "0", "--task", other,
                           "--max-steps", "2", "--batch-size", "16", "--threads", "1",
                           "--out", out)
    assert code == 0, output
    task = json.loads((out / "stage.json").read_text())["task"]
    assert task["name"] == str(other) and task["sizes"]["train"] < 60


def test_trim_vocab_keeps_outputs_on_kept_text(teacher, tmp_path):
    out = tmp_path / "trimmed"
    code, output = run_cli("trim-vocab", "--model", teacher, "--out", out)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["vocab_after"] < m["vocab_before"]
    assert m["size_mb"] < m["size_mb_before"]
    assert m["max_abs_diff_kept_text"] < 1e-4
    trimmed = load(out)
    assert trimmed.config.vocab_size == m["vocab_after"]
    assert trimmed.get_input_embeddings().num_embeddings == m["vocab_after"]
    # the guard: each try's dev drop is recorded; the last one fits the budget or keeps all
    tries = m["tries"]
    assert tries[0]["vocab"] == m["vocab_used_by_kept_texts"]
    assert tries[-1]["vocab"] == m["vocab_after"]
    assert tries[-1]["dev_drop_points"] <= 0.25 or m["vocab_after"] == m["vocab_before"]


def test_trim_by_count_drops_rare_pieces_and_keeps_the_rest_exact(teacher, tmp_path):
    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task
    from edgebert.modeling import load_tokenizer
    from edgebert.vocab import piece_counts, texts_of, used_ids

    record = json.loads((teacher / "stage.json").read_text())["task"]
    task = load_task(TaskConfig.from_record(record))
    tok = load_tokenizer(str(teacher))
    texts = texts_of(task.splits["train"], task.kind)
    counts = piece_counts(tok, texts)
    n = sorted(counts.values())[len(counts) // 4]  # a count a quarter of the pieces fall short of
    out = tmp_path / "trimmed"
    code, output = run_cli("trim-vocab", "--model", teacher, "--out", out, "--min-count", n,
                           "--max-drop", "none")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["min_count"] == n
    assert m["vocab_after"] == len(used_ids(tok, texts, n, counts))
    assert m["vocab_after"] < m["vocab_used_by_kept_texts"] == len(used_ids(tok, texts))
    # texts with a rare piece split differently; the others give the same outputs
    assert m["kept_texts_resplit"] > 0
    assert 0 < m["unchanged_examples_checked"] < len(task.splits["train"])
    assert m["max_abs_diff_kept_text"] < 1e-4
    code, output = run_cli("trim-vocab", "--model", teacher, "--out", tmp_path / "bad",
                           "--min-count", "0")
    assert code == 2 and "--min-count" in output


def test_trim_widens_with_the_most_common_pieces_then_everything(teacher):
    from edgebert.modeling import load_tokenizer
    from edgebert.stages.trim.stage import widenings

    tok = load_tokenizer(str(teacher))
    vocab = tok.get_vocab()
    used = sorted(tok.all_special_ids)
    tries = list(widenings(tok, used, 0.25))
    assert tries[0] == used and tries[-1] == sorted(vocab.values())
    assert all(set(a) < set(b) for a, b in zip(tries, tries[1:]))  # each a strict superset
    assert list(widenings(tok, used, None)) == [used]  # no guard: the kept pieces only
    # with a minimum count: the lower counts' sets come first, then the widening of the last
    rare = sorted(set(used) | {vocab["the"]})
    tries = list(widenings(tok, used, 0.25, [rare]))
    assert tries[:2] == [used, rare] and set(rare) < set(tries[2])
    assert list(widenings(tok, used, None, [rare])) == [used]


def test_hard_loss_ignores_unlabeled_rows():
    from edgebert.kinds import kind
    from edgebert.losses import hard_loss

    name = kind("classification").hard_loss

    logits = torch.randn(4, 2, requires_grad=True)
    none = hard_loss(name, logits, {"labels": torch.full((4,), -100)}, {})
    assert float(none.detach()) == 0.0 and not torch.isnan(none)
    some = hard_loss(name, logits, {"labels": torch.tensor([1, -100, 0, -100])}, {})
    ref = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([1, 0]))
    assert torch.allclose(some, ref)

    # regression: augmented rows carry the float label -100.0; the MSE skips them
    name = kind("regression").hard_loss
    values = torch.randn(4, 1, requires_grad=True)
    none = hard_loss(name, values, {"labels": torch.full((4,), -100.0)}, {})
    assert float(none.detach()) == 0.0
    some = hard_loss(name, values, {"labels": torch.tensor([0.5, -100.0, -2.0, -100.0])}, {})
    ref = torch.nn.functional.mse_loss(values[[0, 2], 0], torch.tensor([0.5, -2.0]))
    assert torch.allclose(some, ref)


def test_distill_with_augmentation(teacher, tmp_path):
    extra = tmp_path / "unlabeled.txt"
    extra.write_text("the film was superb\nboring plot\n")
    out = tmp_path / "aug"
    code, output = run_cli("distill", "--teacher", teacher, "--layers", "0,3", "--augment", "1",
                           "--augment-file", extra, "--max-steps", "6", "--batch-size", "16",
                           "--threads", "1", "--out", out)
    assert code == 0, output
    assert "augmented: 162 unlabeled texts beside 160 labeled ones" in output
    m = json.loads((out / "metrics.json").read_text())
    assert all(h["train_loss"] == h["train_loss"] for h in m["train"]["history"])  # no NaN


def _corpus(path, n=120):
    from helpers import sentiment_rows

    path.write_text("\n".join(r["text"] for r in sentiment_rows(n, seed=3)) + "\n")
    return path


def test_general_distillation_without_mlm_head(tiny_bert, tiny_teacher, tmp_path):
    """The packaged MiniLM's case: an encoder only, so hidden states are the signal."""
    corpus = _corpus(tmp_path / "corpus.txt")
    out = tmp_path / "general"
    # a narrower student with fresh weights starts far from the teacher (through a projection)
    code, output = run_cli("distill", "--teacher", tiny_bert, "--corpus", corpus, "--layers", "0",
                           "--hidden-size", "16", "--heads", "2", "--ffn", "32", "--epochs", "3", "--batch-size", "16", "--lr", "3e-3", "--threads", "1",
                           "--out", out)
    assert code == 0, output
    assert "no MLM head: hidden-state distillation" in output
    m = json.loads((out / "metrics.json").read_text())
    assert not m["mlm"] and m["params"] < m["teacher_params"]
    assert m["heldout"]["heldout_loss"] < m["heldout_before"]["heldout_loss"]
    assert m["heldout"]["heldout_cos"] > m["heldout_before"]["heldout_cos"]
    data = tmp_path / "sent.csv"
    from helpers import sentiment_rows, write_csv

    write_csv(data, sentiment_rows(40))
    code, output = run_cli("finetune", "--model", out, "--task", data, "--kind", "classification",
                           "--max-steps", "3", "--out", tmp_path / "ft")
    assert code == 0, output
    # TinyBERT's second stage: task distillation that starts from the general student
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--student", out, "--cos", "1",
                           "--max-steps", "3", "--threads", "1", "--out", tmp_path / "task")
    assert code == 0, output
    task = json.loads((tmp_path / "task" / "stage.json").read_text())
    assert task["layers"] is None and task["config"]["student"] == str(out)
    assert load(tmp_path / "task").config.hidden_size == 16  # the general student's, not copied
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--student", out, "--layers",
                           "0", "--out", tmp_path / "both")
    assert code == 2 and "--student" in output


def test_general_distillation_with_mlm_head(tiny_bert, tmp_path):
    from transformers import BertForMaskedLM

    mlm_dir = tmp_path / "mlm-teacher"
    BertForMaskedLM.from_pretrained(tiny_bert).save_pretrained(mlm_dir)  # fresh MLM head
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_bert / f).exists():  # transformers 5 writes no special_tokens_map.json
            (mlm_dir / f).write_bytes((tiny_bert / f).read_bytes())
    out = tmp_path / "general-mlm"
    code, output = run_cli("distill", "--teacher", mlm_dir, "--corpus", _corpus(tmp_path / "c.txt"),
                           "--layers", "0", "--hidden-size", "16", "--heads", "2", "--ffn", "32",
                           "--cos", "1", "--epochs", "3", "--batch-size", "16",
                           "--lr", "3e-3", "--threads", "1", "--out", out)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["mlm"]
    assert m["heldout"]["heldout_loss"] < m["heldout_before"]["heldout_loss"]
    assert m["heldout"]["heldout_cos"] > m["heldout_before"]["heldout_cos"]


def test_masking_statistics():
    from edgebert.data.masking import mask_tokens

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (200, 100), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    x, y = mask_tokens(ids, special, mask_id=4, vocab_size=1000, generator=g)
    chosen = y != -100
    assert abs(float(chosen.float().mean()) - 0.15 * 0.98) < 0.01
    assert not bool(chosen[special].any())
    masked = float((x[chosen] == 4).float().mean())
    kept = float((x[chosen] == ids[chosen]).float().mean())
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02
