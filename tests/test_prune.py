"""Pruning on a tiny fine-tuned model: shapes, reload, export, no-op identity, sparsity."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli
from transformers import AutoModelForSequenceClassification

from edgebert.modeling import from_pretrained
from edgebert.stages.prune.magnitude import cubic, masks
from edgebert.stages.prune.structured import choose_ffn, prune_ffn_, prune_heads_


def load(path, **kw):
    return from_pretrained(AutoModelForSequenceClassification, path, **kw).eval()


def inputs(model):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (3, 9), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids)}


def test_structured_pruning_shapes_reload_and_export(tiny_teacher, tmp_path):
    out = tmp_path / "pruned"
    code, output = run_cli("prune", "--model", tiny_teacher, "--heads", "0.5", "--ffn", "0.5",
                           "--drop-layers", "3", "--recover", "distill", "--teacher",
                           tiny_teacher, "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
                           "--out", out)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["shapes"]["heads_per_layer"] == [1, 1, 1]  # 2 heads, half removed; layer 3 gone
    assert m["shapes"]["intermediate_size"] == 32 and m["shapes"]["layers"] == 3
    assert m["params"] < m["parent"]["params"]
    model = load(out)  # pruned heads and sizes come back from config.json
    layer = model.bert.encoder.layer[0]
    assert layer.attention.self.query.out_features == 16  # 1 head x 16 dims
    assert layer.intermediate.dense.out_features == 32
    code, output = run_cli("export", "--model", out, "--format", "onnx", "--out", tmp_path / "o")
    assert code == 0, output


def test_pruning_nothing_changes_nothing(tiny_teacher):
    model = load(tiny_teacher, attn_implementation="eager")
    x = inputs(model)
    with torch.no_grad():
        before = model(**x).logits
        prune_heads_(model, {})
        ffn = [torch.rand(model.config.intermediate_size) for _ in model.bert.encoder.layer]
        prune_ffn_(model, choose_ffn(ffn, 0.0))  # keeps every neuron (reordered indices sorted)
        after = model(**x).logits
    assert torch.allclose(before, after, atol=1e-6)


def test_removing_a_dead_ffn_neuron_is_exact(tiny_teacher):
    model = load(tiny_teacher, attn_implementation="eager")
    x = inputs(model)
    with torch.no_grad():
        # a neuron whose outgoing weights are zero contributes nothing: removing it is exact
        for layer in model.bert.encoder.layer:
            layer.output.dense.weight[:, 5] = 0
        before = model(**x).logits
        scores = [torch.ones(model.config.intermediate_size) for _ in model.bert.encoder.layer]
        for s in scores:
            s[5] = 0
        prune_ffn_(model, choose_ffn(scores, 1))
        assert torch.allclose(before, model(**x).logits, atol=1e-5)


def test_unstructured_sparsity_reaches_its_target(tiny_teacher, tmp_path):
    out = tmp_path / "sparse"
    code, output = run_cli("prune", "--model", tiny_teacher, "--sparsity", "0.8", "--epochs",
                           "2", "--batch-size", "16", "--lr", "1e-3", "--eval-every", "2",
                           "--patience", "1", "--out", out)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["sparsity"]["overall"] == pytest.approx(0.8, abs=0.01)
    # the kept model is one trained at the final sparsity, and patience did not stop the
    # schedule before it got there
    steps = m["train"]["steps"]
    assert m["train"]["best_step"] >= 0.7 * steps and steps >= 0.7 * 20
    model = load(out)
    linear = [mod.weight for mod in model.bert.encoder.modules()
              if isinstance(mod, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
    assert zeros == pytest.approx(0.8, abs=0.01)  # the saved weights, reloaded
    assert m["compressed_mb"] < m["size_mb"]


def test_cubic_schedule_and_per_matrix_masks():
    assert cubic(0, 100, 0.8) == 0.0 and cubic(70, 100, 0.8) == pytest.approx(0.8)
    assert 0.0 < cubic(20, 100, 0.8) < cubic(40, 100, 0.8) < 0.8
    params = {"a": torch.randn(10, 10), "b": 10 * torch.randn(10, 10)}
    per = masks(params, 0.5, "layer")
    assert all(float(1 - v.float().mean()) == pytest.approx(0.5, abs=0.01) for v in per.values())
    glob = masks(params, 0.5, "global")  # the small matrix loses more
    assert float(glob["a"].float().mean()) < float(glob["b"].float().mean())


def test_prune_needs_something_to_do(tiny_teacher, tmp_path):
    code, output = run_cli("prune", "--model", tiny_teacher, "--out", tmp_path / "x")
    assert code == 2 and "nothing to prune" in output


def test_a_pruned_model_can_be_pruned_again(tiny_teacher, tmp_path):
    """Importance ranks the heads a layer still has; later heads keep their original ids."""
    first, second = tmp_path / "heads", tmp_path / "ffn"
    code, output = run_cli("prune", "--model", tiny_teacher, "--heads", "0.5", "--recover",
                           "none", "--out", first)
    assert code == 0, output
    code, output = run_cli("prune", "--model", first, "--ffn", "0.5", "--recover", "none",
                           "--out", second)
    assert code == 0, output
    shapes = json.loads((second / "metrics.json").read_text())["shapes"]
    assert shapes["heads_per_layer"] == [1, 1, 1, 1] and shapes["intermediate_size"] == 32

    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=16)).eval()
    prune_heads_(model, {0: [1]})
    prune_heads_(model, {0: [1]})  # the second of the three left is original head 2
    assert sorted(model.config.pruned_heads[0]) == [1, 2]
    assert model.bert.encoder.layer[0].attention.self.num_attention_heads == 2
