"""Learned structured pruning (CoFi's L0 masks) on tiny models: the masks reach their target
size, the cut model computes what the masked one did, the stage resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli
from transformers import BertConfig, BertForSequenceClassification

from edgebert.stages.prune.l0 import Masks, apply_, keep_probability

BLOCKS = ("layer", "mha", "ffn")


def tiny(layers: int = 4, heads: int = 4, ffn: int = 16):
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn)).eval()


def inputs():
    ids = torch.randint(5, 60, (3, 9), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_cut_model_computes_what_the_masked_model_did(seed):
    """Random deterministic masks, a dropped layer, an attention block and an FFN block
    masked whole: cutting them changes no output (to 1e-4) and really shrinks the model."""
    model = tiny()
    masks = Masks(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for name, a in masks.log_alpha.items():  # blocks open, heads and neurons at random
            a.copy_(torch.randn(a.shape, generator=g) * 3 + (5 if name in BLOCKS else 0))
        for group, layer in (("layer", 1), ("mha", 2), ("ffn", 3)):
            masks.log_alpha[group][layer] = -10.0
        masks.target_now = 0.5  # what eval mode's deterministic masks cut to
        masked = model(**inputs()).logits
        params = sum(p.numel() for p in model.parameters())
        kept = apply_(model, masks)
        cut = model(**inputs()).logits
    assert (masked - cut).abs().max() < 1e-4
    assert kept["sparsity"] == pytest.approx(0.5, abs=0.05)
    assert kept["layers_removed"] == [1] and model.config.num_hidden_layers == 3
    assert kept["heads_per_layer"][2] == 0 and kept["ffn_per_layer"][3] == 0
    assert sum(p.numel() for p in model.parameters()) < params
    heads = [layer.attention.self.num_attention_heads for layer in model.bert.encoder.layer]
    assert heads == [max(1, h) for i, h in enumerate(kept["heads_per_layer"])
                     if i in kept["layers_kept"]]
    # one FFN width for every layer: the widest layer's (the others padded with zeros)
    assert model.config.intermediate_size == kept["ffn_width"] == max(kept["ffn_per_layer"])
    assert sum(kept["ffn_per_layer"]) < 4 * 16


def test_the_lagrangian_pulls_the_expected_size_to_the_target():
    """Masks alone (no task loss) trained on the Lagrangian: the multipliers rise by gradient
    ascent (their gradient negated) and the expected sparsity meets the target."""
    model = tiny()
    masks = Masks(model, lr=0.05)
    opt = torch.optim.AdamW(masks.parameters(), lr=0.05, weight_decay=0.0)
    for _ in range(300):
        loss, _s = masks.lagrangian(0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(masks.expected_sparsity().detach()) == pytest.approx(0.5, abs=0.05)
    assert float(masks.lambdas[1].detach()) > 0  # the quadratic multiplier only ever rises
    assert float(keep_probability(masks.log_alpha["heads"].detach()).min()) < 0.9


def stage(tiny_teacher, out, *extra):
    return run_cli("prune-learned", "--model", tiny_teacher, "--teacher", tiny_teacher,
                   "--sparsity", "0.5", "--mask-lr", "0.05", "--max-steps", "40",
                   "--batch-size", "16", "--lr", "1e-3", "--warmup", "0", "--threads", "1",
                   "--eval-every", "20", "--out", out, *extra)


def test_prune_learned_reaches_its_target_and_cuts_the_model(tiny_teacher, tmp_path):
    out = tmp_path / "learned"
    code, output = stage(tiny_teacher, out, "--recover-epochs", "1")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    learned = m["learned"]
    assert learned["target_sparsity"] == 0.5
    assert learned["reached_sparsity"] == pytest.approx(0.5, abs=0.1)
    assert m["params"] < m["parent"]["params"]
    assert m["shapes"]["params"] == m["params"] < m["shapes_before"]["params"]
    assert len(learned["heads_per_layer"]) == 4 and "dev" in m and "test" in m
    assert m["distillation"]["teacher_layers"] == [1, 2, 3, 4]
    code, output = run_cli("export", "--model", out, "--format", "onnx", "--out",
                           tmp_path / "onnx")
    assert code == 0, output


def test_a_bad_option_is_one_line(tiny_teacher, tmp_path):
    code, output = stage(tiny_teacher, tmp_path / "x", "--sparsity", "1.5")
    assert code == 2 and "--sparsity" in output and len(output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_sigkill_in_the_mask_phase_then_resume(tiny_teacher, tmp_path):
    """Killed while the masks train: the same command resumes from the masks' checkpoint, cuts
    and recovers, and ends where an uninterrupted run ends (the pattern of test_crash.py)."""
    import signal
    import time

    from test_crash import result, run, saved_step

    def cmd(out):
        return ["prune-learned", "--model", str(tiny_teacher), "--teacher", str(tiny_teacher),
                "--sparsity", "0.5", "--mask-lr", "0.05", "--max-steps", "30",
                "--save-every", "2", "--eval-every", "10", "--batch-size", "8",
                "--threads", "1", "--out", str(out)]

    ref, out = tmp_path / "ref", tmp_path / "out"
    reference = run(cmd(ref))
    p = run(cmd(out))
    checkpoint = out.with_name("out.partial") / "checkpoint" / "masks"
    deadline = time.time() + 240
    while p.poll() is None and time.time() < deadline and saved_step(checkpoint) < 16:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert saved_step(checkpoint) >= 16 and not out.exists()
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    p = run(cmd(out))
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    assert result(out) == result(ref)
    learned = [json.loads((d / "metrics.json").read_text())["learned"] for d in (ref, out)]
    assert learned[0] == learned[1]


@pytest.mark.parametrize("family", ["distilbert", "electra", "albert"])
def test_every_family_is_cut_as_it_was_masked(family):
    """The masks sit where the family registry says; ALBERT's one shared layer has no layer
    gate."""
    import transformers
    from helpers import FAMILY_CONFIGS

    name, extra = FAMILY_CONFIGS[family]
    sizes = ({"dim": 32, "n_layers": 4, "n_heads": 4, "hidden_dim": 16}
             if family == "distilbert" else {"hidden_size": 32, "num_hidden_layers": 4,
                                             "num_attention_heads": 4, "intermediate_size": 16})
    config = getattr(transformers, name)(vocab_size=60, **sizes, **{
        k: v for k, v in extra.items() if k != "hidden_dim"})
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    masks = Masks(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for group, a in masks.log_alpha.items():
            a.copy_(torch.randn(a.shape, generator=g) * 3 + (5 if group in BLOCKS else 0))
        masks.target_now = 0.5
        x = inputs()
        masked = model(**x).logits
        params = sum(p.numel() for p in model.parameters())
        apply_(model, masks)
        assert (masked - model(**x).logits).abs().max() < 1e-4
    assert sum(p.numel() for p in model.parameters()) < params
    assert (masks.log_alpha["layer"].numel() == 0) == (family == "albert")
