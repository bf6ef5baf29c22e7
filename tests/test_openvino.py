"""OpenVINO as a format: export, evaluate, bench, bundle and the runtime on a tiny model;
the precision chosen per CPU and recorded; a missing openvino is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import refused_without, run_cli

pytest.importorskip("openvino", reason="OpenVINO is an optional extra: pip install "
                                       "'edgebert[openvino]'")

QUIET = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def ov_export(tiny_teacher, tmp_path_factory) -> Path:
    from edgebert.stages.export.config import ExportConfig
    from edgebert.stages.export.stage import run as export

    out = tmp_path_factory.mktemp("ov") / "openvino"
    export(ExportConfig(model=str(tiny_teacher), out=str(out), format="openvino"), **QUIET)
    return out


def test_export_writes_ir_in_this_cpus_precision_and_keeps_the_parents_predictions(
        ov_export, tiny_teacher):
    from edgebert.cpu import best_float, cpu_flags

    stage = json.loads((ov_export / "stage.json").read_text())
    metrics = json.loads((ov_export / "metrics.json").read_text())
    assert (ov_export / "model.xml").is_file() and (ov_export / "model.bin").is_file()
    assert not (ov_export / "model.onnx").exists()  # the IR only
    assert stage["format"] == "openvino"
    assert stage["inference_precision"] == best_float() == metrics["inference_precision"]
    assert stage["built_on"] == cpu_flags()  # the CPU that chose the precision
    assert metrics["size_mb"] == pytest.approx(
        sum((ov_export / n).stat().st_size for n in ("model.xml", "model.bin")) / 1e6)
    teacher = json.loads((tiny_teacher / "metrics.json").read_text())
    assert abs(metrics["test"]["accuracy"] - teacher["test"]["accuracy"]) <= 0.02
    # run on OpenVINO's ARM CPU plugin too where `edgebert arm-env` built the emulator
    from edgebert.targets.arm64 import openvino_unavailable

    arm, why = metrics["arm64_emulation"], openvino_unavailable()
    assert (arm["checked"], arm.get("machine"), arm.get("reason")) == (
        (False, None, why) if why else (True, "aarch64", None))


def test_fp32_export_matches_its_parent_closely(tiny_teacher, tmp_path):
    from edgebert.stages.export.config import ExportConfig
    from edgebert.stages.export.stage import run as export

    out = export(ExportConfig(model=str(tiny_teacher), out=str(tmp_path / "f"),
                              format="openvino", precision="fp32"), **QUIET)
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "stage.json").read_text())["inference_precision"] == "fp32"
    assert metrics["parity"]["max_abs_diff"] < 1e-3  # f32 weights and arithmetic
    assert metrics["parity"]["top1_agreement"] == 1.0


def test_a_cpu_without_bf16_gets_fp32():
    from edgebert.cpu import best_float

    assert best_float(["avx2", "fma"]) == "fp32"  # an AVX2-only EPYC
    assert best_float(["avx2", "avx512f", "avx512_vnni"]) == "fp32"  # VNNI is INT8 only
    assert best_float(["avx512_bf16"]) == best_float(["amx_bf16", "amx_int8"]) == "bf16"


def test_evaluate_scores_the_ir_as_its_export_did(ov_export):
    from edgebert.evaluate import evaluate

    got = evaluate(str(ov_export), split="test")
    want = json.loads((ov_export / "metrics.json").read_text())["test"]
    assert got["accuracy"] == pytest.approx(want["accuracy"])


def test_bench_times_the_ir_beside_onnx(ov_export, tiny_teacher, tmp_path):
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig

    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\nthe worst one of all, long and dull\n")
    quick = BenchConfig([1], [16], threads=1, warmup=1, runs=3, rounds=1)
    grid = bench([str(ov_export), str(tiny_teacher)], quick, log=lambda *_: None)
    by_format = {r["format"]: r for r in grid["results"]}
    assert set(by_format) == {"openvino", "pytorch"}
    assert by_format["openvino"]["n"] == 3 and by_format["openvino"]["p50_ms"] > 0
    real = bench([str(ov_export)], BenchConfig([1], [16], threads=1, warmup=1, runs=4, rounds=1),
                 log=lambda *_: None, texts=str(texts))
    assert real["results"][0]["seq"] == "texts" and real["results"][0]["n"] == 4


def test_bundle_and_runtime_serve_the_ir_without_torch(ov_export, tmp_path):
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle

    out = bundle(BundleConfig(str(ov_export), str(tmp_path / "b")), **QUIET)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "openvino" and manifest["model"] == "model.xml"
    assert set(manifest["files"]) == {"model.xml", "model.bin", "tokenizer.json"}
    assert manifest["inference_precision"] == json.loads(
        (ov_export / "stage.json").read_text())["inference_precision"]
    code = ("import sys, edgebert.runtime as r; m = r.load(sys.argv[1], threads=1); "
            "p = m.predict(['a fine film', 'dull']); "
            "print(len(p), sorted(p[0]['scores']), 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                         check=True)
    assert res.stdout.split()[0] == "2" and res.stdout.split()[-1] == "False"
    (out / "model.bin").write_bytes(b"altered")
    from edgebert.runtime import BundleError, load

    with pytest.raises(BundleError, match="model.bin: sha256 differs"):
        load(out)


def test_missing_openvino_is_one_line_exit_2_and_nothing_written(tiny_teacher, tmp_path):
    """A Python where `import openvino` fails: the export refuses before writing."""
    refused_without("openvino", "pip install 'edgebert[openvino]'", tiny_teacher, tmp_path,
                    "--format", "openvino")


def test_precision_is_for_openvino_only(tiny_teacher, tmp_path):
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "onnx",
                           "--precision", "bf16", "--out", tmp_path / "x")
    assert code == 2 and "--precision: is for --format openvino" in output


def test_openvino_int8_is_guarded_and_runs_everywhere_an_artifact_does(tiny_teacher, tmp_path):
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig
    from edgebert.evaluate import evaluate
    from edgebert.stages.quantize.config import QuantizeConfig
    from edgebert.stages.quantize.stage import run as quantize

    out = quantize(QuantizeConfig(model=str(tiny_teacher), out=str(tmp_path / "q"),
                                  target="openvino-int8", calibration_examples=32,
                                  max_drop=5.0), **QUIET)
    stage = json.loads((out / "stage.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert stage["format"] == "openvino" and stage["precision"] == "int8"
    assert stage["engine"] == "nncf" and stage["target"] == "openvino-int8"
    assert metrics["float_precision"] == stage["inference_precision"]
    assert metrics["parity_vs_fp32"]["n"] == metrics["dev"]["examples"]  # the whole dev split
    xml = (out / "model.xml").read_text()
    assert "FakeQuantize" in xml or "FakeConvert" in xml  # really quantized
    assert evaluate(str(out), split="test")["accuracy"] == pytest.approx(
        metrics["test"]["accuracy"])
    timed = bench([str(out)], BenchConfig([1], [16], threads=1, warmup=1, runs=2, rounds=1),
                  log=lambda *_: None)
    assert timed["results"][0]["format"] == "openvino"


def test_openvino_int8_refuses_the_onnx_only_tables(tiny_teacher, tmp_path):
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "openvino-int8",
                           "--embedding-bits", "2", "--out", tmp_path / "q")
    assert code == 2 and "--embedding-bits" in output and "takes 8 or 4" in output
    assert not (tmp_path / "q").exists()


def test_a_4_bit_word_table_is_measured_and_kept_only_where_it_pays(tiny_teacher, tmp_path):
    """The tiny model's 32-wide rows make no smaller a file at 4 bits (a scale and zero
    point per 32 values), so the 8-bit table stays, unscored; a smaller one is scored on
    dev and refused where it costs more than --embedding-max-drop by itself."""
    code, output = run_cli("quantize", "--model", tiny_teacher, "--target", "openvino-int8",
                           "--embedding-bits", "4", "--calibration-examples", "16",
                           "--max-drop", "100", "--out", tmp_path / "q")
    assert code == 0, output
    table = json.loads((tmp_path / "q" / "metrics.json").read_text())["embedding_lowbit"]
    assert (table["bits"], table["group_size"], table["kept"]) == (4, 32, False), table
    assert table["reason"] == "no smaller a file" and table["mb_after"] >= table["mb_before"]
    assert "dev_drop" not in table
    assert 'element_type="u4"' not in (tmp_path / "q" / "model.xml").read_text()
    assert "4-bit word table (NNCF INT4)" in output and "no smaller a file" in output


def test_nncf_writes_the_word_table_alone_at_4_bits(tmp_path):
    """On a 64-wide model of 300 words (fewer rows than its 512 positions, as a trimmed
    vocabulary may have): the vocabulary's Gather found, and its table alone stored as u4
    in groups of 64."""
    nncf = pytest.importorskip("nncf", reason="NNCF comes with the openvino extra")
    import openvino as ov
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from edgebert.onnx_export import export_onnx
    from edgebert.stages.quantize.openvino import int4_word_table, word_table

    config = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=2)
    torch.manual_seed(0)
    export_onnx(BertForSequenceClassification(config).eval(), "classification",
                tmp_path / "m.onnx")
    model = ov.Core().read_model(str(tmp_path / "m.onnx"))
    name, width = word_table(model)
    assert "word_embeddings" in name and width == 64  # not the 512 positions' table
    ov.save_model(model, str(tmp_path / "plain.xml"), compress_to_fp16=False)
    ov.save_model(int4_word_table(model, nncf), str(tmp_path / "t.xml"))
    xml = (tmp_path / "t.xml").read_text()
    assert xml.count('element_type="u4"') == 2  # the table's values and zero points
    saved = (tmp_path / "plain.bin").stat().st_size - (tmp_path / "t.bin").stat().st_size
    # 300 x 64 values: 4 bytes each in fp32, half a byte at 4 bits, plus a scale (fp16)
    # and a zero point (4 bits) per row; every other weight as it was (fp32)
    assert 300 * 64 * 3.5 - 300 * 3 <= saved <= 300 * 64 * 3.5


def test_one_text_runs_on_a_static_bucket_with_the_dynamic_models_outputs(tmp_path):
    """One text is padded (masked) to the next length bucket and run on a static model;
    its outputs equal the dynamic model's, per-token outputs cut back to its length."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertForTokenClassification

    from edgebert.formats.openvino import OpenVinoRunner, save_ir
    from edgebert.onnx_export import export_onnx

    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    export_onnx(BertForTokenClassification(config).eval(), "ner", tmp_path / "m.onnx")
    xml = save_ir(tmp_path / "m.onnx", tmp_path / "model.xml", "fp32")
    bucketed = OpenVinoRunner(xml, 1, "fp32", buckets=(8, 16))
    dynamic = OpenVinoRunner(xml, 1, "fp32", buckets=())
    assert sorted(bucketed.static) == [8, 16] and not dynamic.static
    for n in (5, 11, 20):  # buckets 8 and 16, then past the last: the dynamic model
        ids = np.random.default_rng(n).integers(5, 60, (1, n))
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "token_type_ids": np.zeros_like(ids)}
        (got,), (want,) = bucketed(feeds), dynamic(feeds)
        assert got.shape == want.shape == (1, n, 3)
        assert np.abs(got - want).max() < 1e-4

