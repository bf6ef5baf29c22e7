"""Export and INT8 on a tiny fine-tuned model: parity guards, fusion checks, presets, guard."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import numpy_helper

from edgebert.errors import UserError
from edgebert.formats import session
from edgebert.guard import guard
from edgebert.parity import compare, require
from edgebert.predict import ort_forward
from edgebert.stages.quantize.onnx import optimize, quantizable_nodes, quantize_dynamic_onnx
from edgebert.targets import TARGETS


@pytest.fixture(scope="module")
def onnx_artifact(tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "onnx", "--out", out)
    assert code == 0, output
    return out


def test_onnx_export_matches_its_parent(onnx_artifact, tiny_teacher):
    m = json.loads((onnx_artifact / "metrics.json").read_text())
    assert m["parity"]["max_abs_diff"] < 1e-4 and m["parity"]["top1_agreement"] == 1.0
    parent = json.loads((tiny_teacher / "metrics.json").read_text())
    assert m["test"]["accuracy"] == pytest.approx(parent["test"]["accuracy"])
    graph = onnx.load(str(onnx_artifact / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    code, output = run_cli("evaluate", onnx_artifact, "--json")
    assert code == 0 and json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])
    assert json.loads(output)["truncated"] == 0
    code, output = run_cli("evaluate", onnx_artifact, "--json", "--max-length", "4")
    assert code == 0 and json.loads(output)["truncated"] > 0  # the option reaches stage artifacts


def test_tampered_model_fails_parity(onnx_artifact, tmp_path):
    model = onnx.load(str(onnx_artifact / "model.onnx"))
    init = next(i for i in model.graph.initializer if "classifier.weight" in i.name)
    arr = numpy_helper.to_array(init).copy()
    arr[0] += 0.5  # one row of the classifier: a small, silent-looking change
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(tmp_path / "tampered.onnx"))
    feeds = {"input_ids": np.array([[2, 10, 11, 3]]), "attention_mask": np.ones((1, 4), np.int64),
             "token_type_ids": np.zeros((1, 4), np.int64)}
    ref = ort_forward(session(onnx_artifact / "model.onnx"), "classification")(feeds)
    got = ort_forward(session(tmp_path / "tampered.onnx"), "classification")(feeds)
    parity = compare(list(ref), list(got), "classification")
    with pytest.raises(UserError, match=r"max \|delta logits\| .* > 0.001"):
        require(parity, "tampered", 1e-3, 0.99)


def test_fusions_are_counted_and_checked(onnx_artifact, tmp_path):
    src = onnx_artifact / "model.onnx"
    fused = optimize(src, tmp_path / "fused.onnx", heads=2, hidden=32, layers=4)
    assert fused.counts["Attention"] == 4 and fused.counts["SkipLayerNormalization"] == 8
    assert fused.counts["EmbedLayerNormalization"] == 1 and fused.counts["BiasGelu"] == 4
    feeds = {"input_ids": np.array([[2, 10, 11, 12, 3, 0]] * 2),
             "attention_mask": np.array([[1] * 5 + [0]] * 2),
             "token_type_ids": np.zeros((2, 6), np.int64)}
    a = ort_forward(session(src), "classification")(feeds)
    b = ort_forward(session(fused.path), "classification")(feeds)
    assert np.abs(a - b).max() < 1e-4  # fusion changes the graph, not the numbers
    # a layer whose pattern was not fused (simulated: the model claims one more layer)
    with pytest.raises(UserError, match=r"fusion incomplete for 5 layers \(Attention 4"):
        optimize(src, tmp_path / "bad.onnx", heads=2, hidden=32, layers=5)


@pytest.mark.parametrize("target", sorted(t for t in TARGETS
                                           if TARGETS[t].runtime == "onnxruntime"))
def test_each_preset_writes_a_loadable_int8_model(tiny_teacher, tmp_path, target):
    out = tmp_path / target
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", target,
                           "--out", out, "--max-drop", "5")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    stage = json.loads((out / "stage.json").read_text())
    assert stage["preset"]["target"] == target and stage["preset"]["why"]
    assert "flags" in stage["built_on"]
    assert m["size_mb"] < m["fp32_onnx_mb"] and m["parity_vs_fp32"]["top1_agreement"] >= 0.9
    assert m["fused_nodes"]["Attention"] == 4
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops or "QAttention" in ops
    assert not (out / "scratch").exists()
    # SkipLayerNormalization split into Sum + LayerNormalization (ORT's kernel is slower), and
    # ORT's default session optimizations do not fuse it back; the bias Add, straight after
    # its MatMul, goes into DynamicQuantizeMatMul: no Add is left to run
    assert m["skip_layernorm_split"] == 8 and "SkipLayerNormalization" not in ops
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "as_run.onnx")
    ort.InferenceSession(str(out / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    as_run = collections.Counter(
        n.op_type for n in onnx.load(str(tmp_path / "as_run.onnx")).graph.node)
    assert "SkipLayerNormalization" not in as_run and as_run["LayerNormalization"] == 8
    assert as_run["Sum"] == 8 and as_run["Add"] == 0, as_run


def test_dynamic_int8_is_scored_one_text_at_a_time(tiny_teacher, tmp_path):
    """Dynamic INT8 picks its activation scales per batch: its padded-batch outputs are not
    what an app running one text gets, so metrics.json holds the one-at-a-time scores."""
    import numpy as np

    from edgebert.artifacts_io import open_artifact
    from edgebert.formats import session
    from edgebert.predict import one_at_a_time, ort_forward

    out = tmp_path / "int8"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-vnni",
                           "--out", out, "--max-drop", "5")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    opened = open_artifact(out)
    batched = ort_forward(session(out / "model.onnx"), opened.kind)
    single = one_at_a_time(batched)
    for split in ("dev", "test"):
        assert m[split]["accuracy"] == opened.score(single, split)["accuracy"]
    dev = opened.encode("dev")
    gap = max(float(np.abs(a - b).max())
              for a, b in zip(opened.outputs(batched, dev), opened.outputs(single, dev)))
    assert gap > 1e-4  # the batch changes the logits: why the rule exists
    code, output = run_cli("evaluate", out, "--json", "--split", "test")  # and so evaluate scores it
    assert code == 0, output
    assert json.loads(output)["accuracy"] == m["test"]["accuracy"]
    ort_out = tmp_path / "ort"  # and its ORT-format export, scored the same way
    code, output = run_cli("export", "--model", out, "--format", "ort", "--out", ort_out)
    assert code == 0, output
    e = json.loads((ort_out / "metrics.json").read_text())
    assert e["test"]["accuracy"] == m["test"]["accuracy"] and e["precision"] == "int8"
    assert "positions" in e and e["positions"] == m["positions"]


def test_4bit_word_embeddings(tiny_teacher, tmp_path):
    out = tmp_path / "q4"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-vnni",
                           "--embedding-bits", "4", "--out", out, "--max-drop", "5")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    e = m["embedding_lowbit"]
    assert e["kept"] and e["block_size"] == 16  # hidden 32: two blocks a row
    # half a byte a value, plus a 2-byte scale and half a byte of zero point per 16
    assert e["mb_after"] < 0.8 * e["mb_before"]
    assert -m["delta_vs_fp32"]["dev"] == pytest.approx(e["dev_drop"]) and e["dev_drop"] <= 5
    assert m["parity_vs_fp32"]["top1_agreement"] >= 0.9
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "GatherBlockQuantized" in ops and "QEmbedLayerNormalization" not in ops
    code, output = run_cli("evaluate", out, "--json")  # the saved file, scored again
    assert code == 0 and json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])

    code, output = run_cli("quantize", "--model", tiny_teacher, "--engine", "inc",
                           "--embedding-bits", "4", "--out", tmp_path / "bad")
    assert code == 2 and "--embedding-bits: 4 needs --engine ort" in output


@pytest.mark.parametrize("bits", [2, 1])
def test_product_quantized_word_embeddings(tiny_teacher, tmp_path, bits):
    out = tmp_path / f"q{bits}"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-vnni",
                           "--embedding-bits", str(bits), "--out", out, "--max-drop", "100")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    e = m["embedding_lowbit"]
    sub = 8 // bits  # values a code (one byte) stands for
    assert e["kept"] and e["bits"] == bits and e["block_size"] == sub
    assert [t["bits"] for t in e["tries"]] == [bits]  # within budget at once: no next try
    assert -m["delta_vs_fp32"]["dev"] == pytest.approx(e["dev_drop"])
    if bits == 1:  # from a PyTorch model: the codebooks were trained
        tuning = e["codebook_tuning"]
        assert tuning["steps"] > 0 and 0 <= tuning["torch_dev_after"] <= 1
    else:
        assert "codebook_tuning" not in e
    graph = onnx.load(str(out / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert "GatherBlockQuantized" not in ops and "QEmbedLayerNormalization" not in ops
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # named for the bits they hold: _words2_ for 2 bits, _words1_ for 1
    codes = next(v for k, v in inits.items() if k.endswith(f"_words{bits}_codes"))
    books = next(v for k, v in inits.items() if k.endswith(f"_words{bits}_books"))
    vocab = json.loads((tiny_teacher / "config.json").read_text())["vocab_size"]
    # a byte per `sub` values of a row; each position's codebook has min(256, rows) fp16 entries
    assert codes.shape == (vocab, 32 // sub) and codes.dtype == np.uint8
    assert books.shape == (32 // sub * min(256, vocab), sub) and books.dtype == np.float16
    code, output = run_cli("evaluate", out, "--json")  # the saved file, scored again
    assert code == 0 and json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])
    if bits == 1:  # a 1-bit model written when its tensors were named _words2_ runs the same
        old = tmp_path / "named-before"
        shutil.copytree(out, old)
        model = onnx.load(str(old / "model.onnx"))
        for t in model.graph.initializer:
            t.name = t.name.replace("_words1_", "_words2_")
        for n in model.graph.node:
            n.input[:] = [i.replace("_words1_", "_words2_") for i in n.input]
            n.output[:] = [o.replace("_words1_", "_words2_") for o in n.output]
        onnx.save(model, str(old / "model.onnx"))
        code, output = run_cli("evaluate", old, "--json")
        assert code == 0, output
        assert json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])


def test_a_word_table_that_costs_more_than_its_cap_is_refused(tiny_teacher, tmp_path):
    """The rule: a table within the model's budget is still refused where it costs more
    than --embedding-max-drop by itself; a cap of 0 with a lossless table (the tiny
    vocabulary's 120 rows fit the codebooks' 256 entries) is kept, and says so."""
    from edgebert.stages.quantize.embeddings.ladder import table_verdict

    assert table_verdict(0.98, 0.0, 1.0, None) is None  # no cap: the budget alone
    assert "own cost 0.98 > 0.50" in table_verdict(0.98, 0.0, 1.0, 0.5)  # vader-amazon's 1 bit
    assert table_verdict(0.48, 0.1, 1.0, 0.5) is None  # 0.38 of its own
    assert table_verdict(1.2, 0.1, 1.0, 0.5) == "over the budget"
    assert table_verdict(0.1, 0.3, 1.0, 0.0) is None  # a table that gains dev points
    # where INT8 had gained dev points the table's cost counts from there (vader-amazon's)
    assert "own cost 0.52 > 0.50" in table_verdict(0.38, -0.14, 1.0, 0.5)
    out = tmp_path / "capped"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-vnni",
                           "--embedding-bits", "2", "--embedding-max-drop", "0",
                           "--out", out, "--max-drop", "100")
    assert code == 0, output
    e = json.loads((out / "metrics.json").read_text())["embedding_lowbit"]
    assert e["max_cost"] == 0 and e["kept"] and e["bits"] == 2
    assert e["tries"][0]["dev_cost"] == pytest.approx(e["dev_drop"] - e["dev_drop_before"])
    assert e["dev_cost"] <= 0
    code, output = run_cli("quantize", "--model", tiny_teacher, "--embedding-bits", "2",
                           "--embedding-max-drop", "-1", "--out", tmp_path / "bad")
    assert code == 2 and "--embedding-max-drop: must be >= 0" in output


def test_tuned_codebooks_keep_the_model_closer(tiny_teacher):
    """Codebook tuning moves the coarse table's model towards the full table's: its last
    hidden states on dev texts are nearer after tuning than with k-means' entries."""
    import torch
    from sklearn.cluster import KMeans

    from edgebert import task_training
    from edgebert.artifacts_io import load_torch, open_artifact
    from edgebert.stages.quantize.embeddings.codebooks import CodedEmbedding, tune_codebooks

    opened = open_artifact(tiny_teacher)
    model = load_torch(opened)
    table = model.get_input_embeddings().weight.detach().numpy()
    # 16 entries per codebook for the 120 rows (the stage's 256 would hold every row exactly)
    fits = [KMeans(16, n_init=1, random_state=0).fit(table[:, i:i + 8]) for i in range(0, 32, 8)]
    codes = np.stack([f.labels_ for f in fits], 1).astype(np.uint8)
    books = np.stack([f.cluster_centers_ for f in fits]).astype(np.float32)
    data = task_training.prepare(opened.task, opened.tokenizer, opened.max_length)
    tuned, record = tune_codebooks(model, data, codes, books, log=lambda *_: None)
    assert tuned.shape == books.shape and not np.allclose(tuned, books)
    batch = data.collate(data.encoded["dev"].features[:32])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def gap(entries: np.ndarray) -> float:
        coarse = load_torch(opened)
        coarse.set_input_embeddings(CodedEmbedding(codes, entries))
        with torch.no_grad():
            a = model(**inputs, output_hidden_states=True).hidden_states[-1]
            b = coarse(**inputs, output_hidden_states=True).hidden_states[-1]
        return float(((a - b) ** 2).mean())
    assert gap(tuned) < gap(books)


def test_product_quantized_rows_read_back_through_the_graph(tmp_path):
    """The 2-bit lookup's plain-ONNX reading (codes, offsets, codebooks, reshape) gives the
    dequantized table product_quantize returns, for ids of any shape."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgebert.stages.quantize.embeddings.codecs import product_lookup

    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.05, (300, 16)).astype(np.float32)
    weights = np.sqrt(1 + rng.integers(0, 50, 300))
    made = product_lookup(table, "ids", "out", "e", weights=weights)
    inits, nodes, approx = made.inits, made.nodes, made.approx
    assert made.block == 4 and made.nbytes == 300 * 4 + 4 * 256 * 4 * 2
    # 256 entries for 300 rows of 4 values: most rows land near an entry
    assert np.sqrt(((approx - table) ** 2).mean()) < table.std() / 2
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for ids in (np.array([[0, 7, 299]]), np.array([[[1, 2], [3, 4]]])):
        got = run.run(None, {"ids": ids})[0]
        assert got.shape == ids.shape + (16,)
        assert np.abs(got - approx[ids]).max() < 1e-6


def test_4bit_rows_pack_as_onnx_runtime_reads_them():
    """quantize_rows' packing (low nibble first) and zero points, read back by ORT's kernel."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgebert.stages.quantize.embeddings.codecs import quantize_rows

    table = np.random.default_rng(0).normal(0, 0.05, (50, 128)).astype(np.float32)
    table[0] = 0  # a padding row stays exactly zero
    packed, scale, zero, approx = quantize_rows(table, 32)
    assert packed.shape == (50, 64) and scale.shape == (50, 4) and zero.shape == (50, 2)
    # 16 levels per block of 32 Gaussian values: rms error under 1/12 of their spread
    assert np.sqrt(((approx - table) ** 2).mean()) < table.std() / 12
    assert not approx[0].any()
    node = helper.make_node("GatherBlockQuantized", ["w", "ids", "s", "z"], ["out"],
                            domain="com.microsoft", bits=4, block_size=32)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT16, None)],
        [numpy_helper.from_array(packed, "w"), numpy_helper.from_array(scale, "s"),
         numpy_helper.from_array(zero, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    ids = np.array([0, 7, 49])
    got = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    # fp16 scales, so fp16 rows: within fp16's rounding of the dequantized values
    assert scale.dtype == np.float16
    assert np.abs(got.astype(np.float32) - approx[ids]).max() <= np.abs(approx).max() / 1024


def test_skip_layernorm_split_keeps_the_numbers(onnx_artifact, tmp_path):
    from edgebert.stages.quantize.onnx import split_skip_layernorm

    fused = optimize(onnx_artifact / "model.onnx", tmp_path / "fused.onnx", heads=2, hidden=32,
                     layers=4).path
    shutil.copy(fused, tmp_path / "split.onnx")
    assert split_skip_layernorm(tmp_path / "split.onnx") == 8
    feeds = {"input_ids": np.array([[2, 10, 11, 12, 3, 0]] * 2),
             "attention_mask": np.array([[1] * 5 + [0]] * 2),
             "token_type_ids": np.zeros((2, 6), np.int64)}
    a = ort_forward(session(fused), "classification")(feeds)
    b = ort_forward(session(tmp_path / "split.onnx"), "classification")(feeds)
    assert np.abs(a - b).max() < 1e-5
    assert split_skip_layernorm(tmp_path / "split.onnx") == 0  # nothing left to split


def test_static_qdq_for_arm64(tiny_teacher, tmp_path):
    out = tmp_path / "static"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "arm64", "--mode",
                           "static", "--calibration-examples", "64", "--out", out,
                           "--max-drop", "5", "--embedding-bits", "4")
    assert code == 0, output
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # the FP32 fused embedding (or its dequantized tables) rewritten at 4 bits
    assert "GatherBlockQuantized" in ops and "EmbedLayerNormalization" not in ops
    assert json.loads((out / "metrics.json").read_text())["embedding_lowbit"]["kept"]


def test_guard_falls_back_nodes_when_the_budget_is_tight(onnx_artifact, tmp_path):
    src = onnx_artifact / "model.onnx"
    feeds = {"input_ids": np.array([[2, 10, 11, 12, 3]] * 4),
             "attention_mask": np.ones((4, 5), np.int64),
             "token_type_ids": np.zeros((4, 5), np.int64)}
    ref = ort_forward(session(src), "classification")(feeds)

    def error(path):
        return float(np.abs(ort_forward(session(path), "classification")(feeds) - ref).mean())

    def quantize(dst, exclude, only):
        if only is not None:
            exclude = [n for n in quantizable_nodes(src) if n not in only]
        return quantize_dynamic_onnx(src, dst, TARGETS["x86-vnni"], exclude)

    full_error = error(quantize(tmp_path / "all.onnx", None, None))
    assert full_error > 0
    # "metric" in points: minus the output error, so any error is a drop
    res = guard(quantize, lambda p: -1e4 * error(p), error, 0.0, quantizable_nodes(src),
                budget=1e4 * full_error / 2, scratch=tmp_path, log=lambda *_: None)
    assert res.within_budget and res.excluded
    assert res.drop <= 1e4 * full_error / 2
    assert set(res.sensitivity) == set(quantizable_nodes(src))


def test_torchscript_and_ort_exports(tiny_teacher, onnx_artifact, tmp_path):
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "torchscript",
                           "--out", tmp_path / "ts")
    assert code == 0, output
    assert json.loads((tmp_path / "ts" / "metrics.json").read_text())["parity"][
        "max_abs_diff"] < 1e-4
    code, output = run_cli("export", "--model", onnx_artifact, "--format", "ort",
                           "--out", tmp_path / "ort")
    assert code == 0, output
    assert (tmp_path / "ort" / "model.ort").exists()
    assert not (tmp_path / "ort" / "model.onnx").exists()
    code, output = run_cli("evaluate", tmp_path / "ort", "--json")
    assert code == 0, output


def test_quantize_refuses_an_unknown_target(tiny_teacher, tmp_path):
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "riscv",
                           "--out", tmp_path / "x")
    assert code == 2 and "unknown target" in output and not (tmp_path / "x").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_inc_engine_writes_an_int8_program_that_evaluates_and_benches(tiny_teacher, tmp_path):
    """`--engine inc`: Neural Compressor's tuning, kept within the budget, saved as a
    torch.export program that `evaluate` and the bench worker open in new processes."""
    out = tmp_path / "inc"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--engine", "inc", "--target",
                           "x86-avx2", "--max-drop", "5", "--out", out)
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    stage = json.loads((out / "stage.json").read_text())
    assert stage["engine"] == "inc" and stage["format"] == "pt2" and (out / "model.pt2").exists()
    assert -5 <= m["delta_vs_fp32"]["dev"] <= 5 and m["parity_vs_fp32"]["top1_agreement"] >= 0.9
    assert 0 < m["parity_vs_fp32"]["max_abs_diff"] < 1.0  # quantized, so not bit-identical
    code, output = run_cli("evaluate", out, "--json")
    assert code == 0 and json.loads(output)["accuracy"] == pytest.approx(m["test"]["accuracy"])
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "edgebert.bench.worker", str(out), "--seq", "16",
                          "--warmup", "1", "--runs", "3", "--threads", "1"],
                         capture_output=True, text=True, check=True)
    assert len(json.loads(res.stdout.strip().splitlines()[-1])["samples_ms"]) == 3
    code, output = run_cli("quantize", "--model", tiny_teacher, "--engine", "inc", "--target",
                           "arm64", "--out", tmp_path / "arm")
    assert code == 2 and "an x86 ONNX Runtime target" in output and not (tmp_path / "arm").exists()


def test_head_counts_are_pinned_into_minus_one_reshapes(tmp_path):
    """transformers 5 reshapes q/k/v to (..., -1, head_size); the export writes the count
    (projection width / head size) so ORT's fuser sees each layer's own heads."""
    import numpy as np
    from onnx import TensorProto, helper

    from edgebert.onnx_export import pin_head_counts

    w = numpy_helper.from_array(np.ones((8, 4), np.float32), "W")  # 4 wide: 2 heads of 2
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    parts = [numpy_helper.from_array(np.array([v], np.int64), f"p{i}")
             for i, v in enumerate((0, 0, -1, 2))]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["q"]),
             helper.make_node("Concat", [p.name for p in parts], ["shape"], axis=0),
             helper.make_node("Reshape", ["q", "shape"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b, *parts])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert pin_head_counts(path) == 1
    model = onnx.load(path)
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    pinned = next(i for i in model.graph.initializer if i.name == concat.input[2])
    assert numpy_helper.to_array(pinned).tolist() == [2]
    assert "p2" not in {i.name for i in model.graph.initializer}  # the -1 is gone
    out = session(path).run(None, {"x": np.ones((1, 3, 8), np.float32)})[0]
    assert out.shape == (1, 3, 2, 2)
    assert pin_head_counts(path) == 0  # already pinned: nothing to do


def test_known_harmless_onnxruntime_warnings_are_dropped():
    """ONNX Runtime's attention fusion warned on every head-pruned layer and its quantizer
    on every model: both dropped where they are logged; any other warning still prints."""
    import logging

    import edgebert  # noqa: F401  (installs the filter)

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    for name in ("fusion_attention", ""):  # the fusion's logger; the quantizer's (root)
        log, keep = logging.getLogger(name), Keep()
        log.addHandler(keep)
        try:
            log.warning("Input hidden size (%d) is not same as weight matrix dimension of q,k,v "
                        "(%d). Please provide a correct input hidden size or pass in 0", 192, 384)
            log.warning("Please consider to run pre-processing before quantization. Refer to ...")
            log.warning("a warning nobody named")
        finally:
            log.removeHandler(keep)
    assert seen == ["a warning nobody named"] * 2


def test_position_table_is_cut_to_max_length_and_checked(tiny_teacher, tmp_path):
    """quantize cuts the position rows the artifact's max_length never reads, only when the
    outputs at the longest input stay bit-equal; bench then refuses a longer --seq."""
    from edgebert.bench.worker import time_model
    from edgebert.stages.quantize.positions import longest_input, trim_positions

    out = tmp_path / "int8"
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "x86-vnni",
                           "--out", out, "--max-drop", "5")
    assert code == 0, output
    m = json.loads((out / "metrics.json").read_text())
    assert m["positions"] is None  # the tiny model: 128 positions, max_length 128
    model = out / "model.onnx"
    whole = session(model)
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    check = longest_input("classification", 16, vocab)
    size = model.stat().st_size
    made = trim_positions(model, 16, check)
    assert made["kept"] and made["rows_after"] == 18 and made["max_tokens"] == 16
    assert list(made["rows_before"].values()) == [128]
    assert made["mb_saved"] > 0 and model.stat().st_size < size
    assert np.array_equal(check(whole), check(session(model)))
    m["positions"] = made
    (out / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(SystemExit, match="at most 16 tokens"):
        time_model(str(model), 1, 64, 1, 0, 1)
    assert len(time_model(str(model), 1, 16, 1, 1, 2)["samples_ms"]) == 2
    code, output = run_cli("evaluate", out, "--max-length", "32")
    assert code == 2 and "takes at most 16 tokens" in output, output


def test_arm64_takes_the_x86_vnni_graph_of_the_same_model(tiny_teacher, tmp_path):
    """Dynamic INT8 reads no activation type, so arm64's graph is x86-vnni's: compress takes
    it (--same-graph-as) instead of a second guard and word-table search; any other option
    that differs, or a mode where the graphs differ, is refused and nothing is written."""
    x86, arm = tmp_path / "x86", tmp_path / "arm"
    common = ["quantize", "--model", tiny_teacher, "--max-drop", "5"]
    code, output = run_cli(*common, "--target", "x86-vnni", "--out", x86)
    assert code == 0, output
    code, output = run_cli(*common, "--target", "arm64", "--same-graph-as", x86, "--out", arm)
    assert code == 0, output
    assert (arm / "model.onnx").read_bytes() == (x86 / "model.onnx").read_bytes()
    got, twin = (json.loads((d / "metrics.json").read_text()) for d in (arm, x86))
    assert got["same_graph_as"] == str(x86) and got["test"] == twin["test"]
    assert got["arm64_emulation"] is not None  # arm64's own check ran (or says why not)
    stage = json.loads((arm / "stage.json").read_text())
    assert stage["target"] == "arm64" and stage["preset"]["static_activations"] == "QInt8"
    for other, says in ((["--max-drop", "3"], "--max-drop"), (["--mode", "static"], "--mode")):
        code, output = run_cli(*common, *other, "--target", "arm64", "--same-graph-as", x86,
                               "--out", tmp_path / "no")
        assert code == 2 and says in output and not (tmp_path / "no").exists(), output


def test_a_dev_sample_keeps_split_order_and_where_each_feature_came_from():
    """The guards rank nodes on dev.sample(256): the same features every time, in split
    order, each with its extra (word ids, offsets) and its index into the split."""
    from edgebert.data.features import Encoded

    enc = Encoded([{"input_ids": [i]} for i in range(1000)], truncated=3,
                  extra=[{"n": i} for i in range(1000)])
    sample = enc.sample(256)
    assert len(sample.features) == 256 and sample.index == sorted(set(sample.index))
    assert all(f["input_ids"] == [i] and e["n"] == i
               for f, e, i in zip(sample.features, sample.extra, sample.index))
    assert sample.index == enc.sample(256).index != enc.sample(256, seed=1).index
    assert enc.sample(5000).index == list(range(1000))  # fewer than n: all of them
