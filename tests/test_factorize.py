"""Factorized word embeddings as a compression step: a student distilled with
`--factorize-embeddings E` holds a vocabulary x E table and an E x hidden projection,
reloads, trims its vocabulary, quantizes and exports like any student."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli


def test_svd_initialisation_is_the_best_rank_e_approximation():
    from edgebert.factorize import FactorizedEmbedding

    torch.manual_seed(0)
    low_rank = torch.randn(40, 3) @ torch.randn(3, 16)  # a rank-3 table
    table = torch.nn.Embedding(40, 16)
    table.weight.data = low_rank
    exact = FactorizedEmbedding.from_table(table, 3)
    ids = torch.arange(40)
    assert torch.allclose(exact(ids), low_rank, atol=1e-4)  # rank 3 holds it exactly
    rough = FactorizedEmbedding.from_table(table, 2)
    assert (rough(ids) - low_rank).norm() > 1e-2  # rank 2 cannot


def test_a_factorized_student_runs_the_chain(tiny_teacher, tmp_path):
    student = tmp_path / "student"
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--layers", "0,2",
                           "--factorize-embeddings", "8", "--epochs", "1", "--batch-size",
                           "16", "--lr", "3e-3", "--threads", "1", "--out", student)
    assert code == 0, output
    assert "embeddings factorized to rank 8" in output
    config = json.loads((student / "config.json").read_text())
    m = json.loads((student / "metrics.json").read_text())
    assert config["factorized_embeddings"] == 8
    f = m["factorized_embeddings"]
    assert f["params_after"] < f["params_before"] and 0 < f["relative_error"] < 1
    from edgebert.modeling import from_pretrained, head_class

    model = from_pretrained(head_class("classification"), student)
    emb = model.get_input_embeddings()
    assert emb.small.weight.shape[1] == 8 and emb.up.weight.shape == (32, 8)
    code, output = run_cli("evaluate", student, "--json")  # reloaded: the same accuracy
    assert code == 0 and json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])
    trimmed = tmp_path / "trimmed"
    code, output = run_cli("trim-vocab", "--model", student, "--out", trimmed)
    assert code == 0, output
    t = json.loads((trimmed / "metrics.json").read_text())
    assert t["max_abs_diff_kept_text"] < 1e-4
    int8 = tmp_path / "int8"
    code, output = run_cli("quantize", "--model", trimmed, "--target", "x86-avx2",
                           "--max-drop", "50", "--out", int8)
    assert code == 0, output
    q = json.loads((int8 / "metrics.json").read_text())
    assert q["parity_vs_fp32"]["top1_agreement"] >= 0.8
    code, output = run_cli("export", "--model", trimmed, "--format", "torchscript",
                           "--out", tmp_path / "ts")
    assert code == 0, output


def test_factorizing_beyond_the_width_is_one_line(tiny_teacher, tmp_path):
    code, output = run_cli("distill", "--teacher", tiny_teacher, "--layers", "0",
                           "--factorize-embeddings", "32", "--out", tmp_path / "s")
    assert code == 2 and "--factorize-embeddings 32: must be between 1 and the embedding "\
        "width 32" in output, output
