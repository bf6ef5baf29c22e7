"""INT8 for OpenVINO (the `openvino-int8` target): NNCF's post-training quantization of the
model's FP32 ONNX export, behind the same accuracy guard as ONNX Runtime INT8.

    <out>/model.xml, model.bin   INT8 IR (FakeQuantize before each MatMul; INT8 weights)
    <out>/stage.json             target, the float precision the rest runs in, CPU flags
    <out>/metrics.json           dev/test metrics, drop vs FP32, whole-dev parity, sizes,
                                 and the IR under arm64 emulation beside x86 (arm64_emulation)

NNCF quantizes statically (activation ranges from training texts), so scores do not depend
on batching. Where the whole model loses more than --max-drop dev points, the guard
(edgebert/guard.py) keeps the MatMuls whose INT8 output moves most in float, as it keeps
ONNX Runtime nodes in FP32.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import calibration_items, copy_tokenizer
from edgebert.config import to_dict
from edgebert.cpu import best_float
from edgebert.errors import UserError
from edgebert.formats import FORMATS, require_model_file, session
from edgebert.formats.openvino import open_openvino, require_openvino
from edgebert.guard import guard, sampled_damage
from edgebert.metrics import points
from edgebert.parity import TOLERANCES, compare, require
from edgebert.predict import one_at_a_time, ort_forward, runner_forward
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.quantize.embeddings.ladder import table_verdict
from edgebert.stages.quantize.scoring import finish, int8_metrics, summary
from edgebert.stages.quantize.source import fp32_onnx
from edgebert.targets.check import openvino_arm64_check

PROBE_CALIBRATION_EXAMPLES = 64
"""Training texts that calibrate each probe of the guard (one MatMul alone in INT8, to rank
the MatMuls by damage); the tries it keeps calibrate on all --calibration-examples. A probe
is a whole NNCF run whose statistics pass grows with its texts, and the ranking needs only
their order: on the default chain's pruned model 64 texts gave the 256's top five, and with
the damage read on 256 dev texts rather than all, the stage made the same artifact in 0.59x
its CPU time (docs/defaults.md)."""


def matmuls(model) -> list[str]:
    """Names of the model's MatMul operations: what NNCF quantizes, what the guard may keep
    in float."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "MatMul"]


TABLE_GROUP = 64
"""Values of a word-table row that share an INT4 scale and zero point (NNCF's
compress_weights, asymmetric), as in ONNX Runtime's 4-bit table; the largest power of two
that divides the row where 64 does not (NNCF needs groups that divide it)."""


def word_table(model) -> tuple[str, int] | None:
    """(name, row width) of the Gather that reads the word table: of those reading a 2-D
    constant, the one named word_embeddings, else the one with the most rows (a trimmed
    vocabulary may have fewer rows than the position table, but keeps its name); None
    where there is none."""
    tables = [("word_embeddings" in op.get_friendly_name(), shape[0].get_length(),
               op.get_friendly_name(), shape[1].get_length())
              for op in model.get_ordered_ops() if op.get_type_name() == "Gather"
              and op.input_value(0).get_node().get_type_name() == "Constant"
              and (shape := op.input_value(0).get_partial_shape()).rank.get_length() == 2]
    return max(tables)[2:] if tables else None


def table_group(width: int) -> int:
    """
    >>> table_group(384), table_group(32), table_group(100)
    (64, 32, 4)
    """
    return next(g for g in (TABLE_GROUP, 32, 16, 8, 4, 2, 1) if width % g == 0)


def int4_word_table(model, nncf):
    """`model` (float, with a `word_table`) with its word table compressed by NNCF to INT4
    (groups of `table_group` values share a scale and zero point), every other weight left
    for nncf.quantize."""
    word, width = word_table(model)
    others = [op.get_friendly_name() for op in model.get_ordered_ops()
              if op.get_type_name() in ("MatMul", "Gather") and op.get_friendly_name() != word]
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_ASYM, ratio=1.0,
                                 group_size=table_group(width), all_layers=True,
                                 ignored_scope=nncf.IgnoredScope(names=others, validate=False))


def ir_mb(xml: Path) -> float:
    return sum(f.stat().st_size for f in (xml, xml.with_suffix(".bin"))) / 1e6


def int4_table(float_model, quantize, drop_of, result, cfg: QuantizeConfig, scratch: Path,
               log) -> tuple[Path, float, dict]:
    """The guard's INT8 `result` again with its word table in INT4 (`quantize(dst)` makes
    it, `drop_of(path)` is a graph's dev drop against the float model), kept where the file
    is smaller and `table_verdict` passes it: (the IR kept, its dev drop, what was tried)."""
    words = word_table(float_model)
    if words is None:
        log("4-bit word table: not applied: no word-embedding Gather in the model")
        return result.path, result.drop, {"bits": 4, "kept": False,
                                          "reason": "no word-embedding Gather"}
    drop, trial = result.drop, quantize(scratch / "table4.onnx")
    table = {"bits": 4, "group_size": table_group(words[1]), "mb_before": ir_mb(result.path),
             "mb_after": ir_mb(trial), "dev_drop_before": drop,
             "max_cost": cfg.embedding_max_drop}
    measured = ""
    if table["mb_after"] >= table["mb_before"]:  # narrow rows: the scales outweigh the bits
        refused = "no smaller a file"
    else:
        drop4 = drop_of(trial)
        refused = table_verdict(drop4, drop, cfg.max_drop, cfg.embedding_max_drop)
        table |= {"dev_drop": drop4, "dev_cost": drop4 - drop}
        measured = (f", dev drop {drop4:.2f} points (the table at 8 bits: {drop:.2f}; "
                    f"budget {cfg.max_drop:.2f})")
    log(f"4-bit word table (NNCF INT4): {table['mb_before']:.2f} -> {table['mb_after']:.2f} "
        f"MB{measured}: " + (refused or "kept"))
    if refused:
        return result.path, drop, table | {"kept": False, "reason": refused}
    return trial, table["dev_drop"], table | {"kept": True}


def quantize_openvino(cfg: QuantizeConfig, opened, log=print) -> Path:
    """`cfg.model` to an INT8 OpenVINO IR in `cfg.out`, within `cfg.max_drop` dev points of
    the FP32 model run in the same precision."""
    out = Path(cfg.out)
    require_openvino()
    try:
        import nncf
    except ImportError:
        raise UserError("--target openvino-int8 needs NNCF (pip install "
                        "'edgebert[openvino]')") from None
    require_model_file(opened.path, ("model.safetensors", "model.onnx"), "to quantize")
    if opened.record.get("precision") == "int8":
        raise UserError(f"{cfg.model}: already INT8 (an ONNX Runtime graph); quantize the FP32 "
                        f"model for OpenVINO")
    if cfg.embedding_bits not in (4, 8):
        raise UserError("--embedding-bits: --target openvino-int8 takes 8 or 4 (NNCF's INT4 "
                        "table); the 1- and 2-bit tables are ONNX Runtime graph rewrites")
    precision = best_float()
    log(f"NNCF quantizes statically on {cfg.calibration_examples} training texts (--mode, "
        f"--calibration and --fuse are ONNX Runtime's); its float parts run in {precision}")
    dev = opened.encode("dev")
    metric = opened.task.metric
    with artifact.building(out, "quantize", to_dict(cfg), [str(opened.path)]) as work:
        scratch = work / "scratch"
        scratch.mkdir(exist_ok=True)
        fp32 = scratch / "fp32.onnx"
        fp32_onnx(opened, fp32, dev, cfg.model)
        ref_dev_out = opened.outputs(ort_forward(session(fp32), opened.kind), dev)
        ov = require_openvino()
        core = ov.Core()
        float_model = core.read_model(str(fp32))
        record = {"inference_precision": precision}

        def forward(path: Path):  # one text at a time, as an app runs it (length buckets)
            return one_at_a_time(runner_forward(open_openvino(path, record=record),
                                                opened.kind))

        float_ir = scratch / "float.xml"
        ov.save_model(float_model, str(float_ir), compress_to_fp16=False)
        float_fwd = forward(float_ir)
        float_dev_out = opened.outputs(float_fwd, dev)
        # the float IR is the parent itself, run in `precision`
        require(compare(ref_dev_out, float_dev_out, opened.kind),
                f"OpenVINO {precision} model of {cfg.model}", *TOLERANCES[precision])
        float_dev = opened.score(float_fwd, "dev", dev, float_dev_out)
        items = calibration_items(opened, cfg.calibration_examples)
        candidates = matmuls(float_model)

        def run_quantizer(dst: Path, exclude, only, int4_table: bool = False) -> Path:
            calibration = items
            if only is not None:  # a probe of one node's damage, for ranking only
                exclude = [n for n in candidates if n not in only]
                calibration = items[:PROBE_CALIBRATION_EXAMPLES]
            model = core.read_model(str(fp32))
            q = nncf.quantize(int4_word_table(model, nncf) if int4_table else model,
                              nncf.Dataset(calibration),
                              model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(calibration),
                              ignored_scope=nncf.IgnoredScope(names=list(exclude or []),
                                                              validate=False))
            xml = dst.with_suffix(".xml")  # the guard names its tries .onnx
            ov.save_model(q, str(xml))
            return xml

        def dev_points(path: Path) -> float:
            return points(opened.score(forward(path), "dev", dev), metric)

        result = guard(run_quantizer, dev_points,
                       sampled_damage(opened, dev, float_dev_out, forward),
                       points(float_dev, metric), candidates, cfg.max_drop, scratch, log)
        if not result.within_budget:
            raise UserError(f"--max-drop {cfg.max_drop}: even with {len(result.excluded)} "
                            f"MatMuls in {precision} the OpenVINO INT8 model loses "
                            f"{result.drop:.2f} dev points; raise the budget")
        kept, drop, table = result.path, result.drop, None
        if cfg.embedding_bits == 4:
            kept, drop, table = int4_table(
                float_model, lambda dst: run_quantizer(dst, result.excluded, None, True),
                lambda path: points(float_dev, metric) - dev_points(path), result, cfg,
                scratch, log)
        final = work / "model.xml"
        ov.save_model(core.read_model(str(kept)), str(final))
        fp32_mb = fp32.stat().st_size / 1e6
        fwd = forward(final)
        metrics = int8_metrics(opened, fwd, dev, opened.outputs(fwd, dev),
                               {"dev": float_dev, "test": opened.score(float_fwd, "test")},
                               float_dev_out, drop)
        if table:
            metrics["embedding_lowbit"] = table
        # NNCF's IR runs on ARM's CPU plugin too: checked there, it is an arm64 candidate
        metrics["arm64_emulation"] = openvino_arm64_check(final, opened, precision, fp32, log)
        shutil.rmtree(scratch)
        copy_tokenizer(opened.path, work)
        size = sum((work / n).stat().st_size for n in FORMATS["openvino"].files()) / 1e6
        # "fp32" and "delta_vs_fp32", as every INT8 stage names them, hold the float model run
        # in `precision` (float_precision): what this artifact replaces where it runs
        metrics |= {"float_precision": precision, "excluded_nodes": result.excluded,
                    "guard_tries": result.tries, "format": "openvino",
                    "inference_precision": precision, "size_mb": size, "fp32_onnx_mb": fp32_mb}
        log(summary(metrics, "openvino", precision, opened.kind) + f", {size:.1f} MB")
        return finish(work, cfg, opened, metrics, "openvino", inference_precision=precision,
                      engine="nncf", mode="static")
