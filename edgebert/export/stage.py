"""The export stage: a model artifact in, an ONNX / ORT / OpenVINO / ExecuTorch /
TorchScript artifact out, refused when it drifts from its parent on dev examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from edgebert import artifact
from edgebert.artifacts_io import copy_tokenizer, load_torch, open_artifact
from edgebert.config import ExportConfig, to_dict
from edgebert.errors import UserError
from edgebert.parity import TOLERANCES, agreement_text, compare, require
from edgebert.export.torchscript import export_torchscript, torchscript_forward
from edgebert.formats import extensions_library, require_model_file, session
from edgebert.onnx_export import export_onnx
from edgebert.predict import ort_forward, scored_as_run, torch_forward

INT8_LOWERING = (0.05, 0.999)
"""(max |delta logits|, least top-1 agreement): the drift an ExecuTorch INT8 program may
show against its own PT2E reference (the quantized model the guard scored, run in
PyTorch): XNNPACK's INT8 kernels requantize with their own rounding, a step or two of an
activation's scale; beyond that the lowering, not the rounding, changed the model."""
CALIBRATION_EXAMPLES = 256
"""Training texts an ExecuTorch INT8 export calibrates its activation ranges on (quantize's
default --calibration-examples)."""


def executorch_program(cfg: ExportConfig, opened, target: Path, dev, parent_dev: list,
                       log) -> tuple:
    """Write `target` (model.pte) from `opened`'s PyTorch weights, in cfg.precision; returns
    (its forward in ExecuTorch's runtime, the outputs it must match on dev, what to record).
    FP32 must match the parent; INT8 is first kept within cfg.max_drop dev points of the
    parent by the guard (on its PT2E reference), then must match that reference."""
    from edgebert.artifacts_io import calibration_items
    from edgebert.export import executorch as et
    from edgebert.formats.executorch import open_executorch
    from edgebert.guard import guard
    from edgebert.metrics import points, reference
    from edgebert.predict import runner_forward

    model = load_torch(opened)
    program = et.capture(model, opened.kind, opened.max_length)
    record: dict = {"max_batch": et.MAX_BATCH, "max_tokens": opened.max_length}
    checked = parent_dev
    if cfg.precision == "int8":
        metric = opened.task.metric
        items = calibration_items(opened, CALIBRATION_EXAMPLES)
        made: dict[Path, object] = {}  # the guard names its tries by path; they stay in memory

        def quantize(dst: Path, exclude, only) -> Path:
            made[dst] = et.quantize_pt2e(program, items, exclude, only)
            return dst

        sample = dev.sample(256)  # 256 dev examples rank the layers

        def damage(path: Path) -> float:
            got = opened.outputs(et.reference_forward(made[path]), sample)
            return float(np.mean([np.abs(g - parent_dev[i]).mean()
                                  for g, i in zip(got, sample.index)]))

        parent_scores = opened.score(None, "dev", dev, parent_dev)
        result = guard(quantize, lambda path: points(opened.score(
            et.reference_forward(made[path]), "dev", dev), metric), damage,
            points(parent_scores, metric), et.linear_layers(model, opened.kind), cfg.max_drop,
            target.parent, log)
        if not result.within_budget:
            raise UserError(f"--max-drop {cfg.max_drop}: even with {len(result.excluded)} "
                            f"linear layers in FP32 the ExecuTorch INT8 model loses "
                            f"{result.drop:.2f} dev points; raise the budget")
        int8 = made[result.path]
        checked = opened.outputs(et.reference_forward(int8), dev)
        program = et.trace(int8, opened.kind, opened.max_length)
        record |= {"fp32_layers": result.excluded, "guard_tries": result.tries,
                   "calibration_examples": len(items), "fp32_dev": reference(parent_scores),
                   "delta_vs_fp32_dev": -result.drop}
    record["outside_delegate"] = et.lower(program, target)
    log(f"executorch {cfg.precision}: outside the XNNPACK delegate: "
        f"{', '.join(record['outside_delegate']) or 'nothing'}")
    runner = open_executorch(target, record={"task": opened.record["task"]})
    return runner_forward(runner, opened.kind), checked, record


def float_precision(cfg: ExportConfig) -> str | None:
    """The precision an OpenVINO export runs in (None for other formats): cfg.precision, or
    this CPU's best (`cpu.best_float`); bf16 only where this CPU runs it, since the export
    is checked in the precision it records."""
    if cfg.format != "openvino":
        return None
    from edgebert.cpu import best_float

    best = best_float()
    if cfg.precision == "bf16" and best != "bf16":
        raise UserError("--precision bf16: this CPU has no bf16 arithmetic (AMX-BF16 or "
                        "AVX512-BF16), so the export could not be checked in it; export on "
                        "such a CPU, or use --precision fp32")
    return best if cfg.precision == "auto" else cfg.precision


def parent_forward(opened):
    """Forward of the input artifact: PyTorch weights, else its ONNX model."""
    path, fmt = require_model_file(opened.path, ("model.safetensors", "model.onnx"),
                                   "to export from")
    if fmt == "pytorch":
        return torch_forward(load_torch(opened)), fmt
    return ort_forward(session(path), opened.kind), fmt


def convert_to_ort(onnx_path: Path, work: Path, custom_ops: str | None = None) -> Path:
    """ONNX Runtime's own converter; the .ort file lands beside the .onnx one, with
    required_operators.config (custom ops included) for a reduced Mobile build."""
    extra = ["--custom_op_library", custom_ops] if custom_ops else []
    proc = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort",
                           str(onnx_path), "--output_dir", str(work), *extra],
                          capture_output=True, text=True)
    made = work / (onnx_path.stem + ".ort")
    if proc.returncode != 0 or not made.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{onnx_path}: ORT format conversion failed ({tail[0]})")
    for extra in work.glob("*.required_operators*.config"):
        extra.rename(work / "required_operators.config")
    return made


def _with_tokenizer(cfg: ExportConfig, onnx_path: Path, opened, log) -> dict:
    """Replace the checked `onnx_path` (ids in) by the one-file model (text in): ONNX, or
    ORT format converted with the extensions' custom ops; every dev example checked."""
    from edgebert.export import text_check, text_graph
    from edgebert.predict import one_at_a_time

    work = onnx_path.parent
    plain = onnx_path.rename(work / "ids_model.onnx")
    merged = text_graph.merge(plain, opened.path / "tokenizer.json", opened.kind,
                              list(opened.task.labels or []), opened.max_length)
    import onnx

    onnx.save(merged, str(onnx_path))
    target = onnx_path
    if cfg.format == "ort":
        target = convert_to_ort(onnx_path, work, extensions_library())
        onnx_path.unlink()
    parity = text_check.check(target, plain, opened)
    text_check.require(parity, f"{cfg.format} export of {cfg.model} with the tokenizer")
    log(f"tokenizer in the graph: {parity['examples']} dev examples, 0 token-id and 0 "
        f"prediction mismatches (max |delta score| {parity['max_abs_score_diff']:.1e})")
    parity["arm64_emulation"] = text_check.arm64(target, opened)
    # Equal to the one-file model on every example (checked above), scored at its batch 1.
    forward = one_at_a_time(ort_forward(session(plain), opened.kind))
    scores = {split: opened.score(forward, split) for split in ("dev", "test")}
    plain_mb = plain.stat().st_size / 1e6
    plain.unlink()
    return {"parity": parity, "plain_mb": plain_mb, "scores": scores}


def run(cfg: ExportConfig, log=print) -> Path:
    """Export `cfg.model` to `cfg.format` in `cfg.out`, parity-checked on the dev split.

    >>> # run(ExportConfig(model="runs/rt/student", format="onnx", out="runs/rt/onnx"))
    """
    from edgebert.formats import format_named

    out = Path(cfg.out)
    if artifact.already_done(out, log, "export"):
        return out
    fmt = format_named(cfg.format)
    fmt.require()  # before anything is written
    precision = float_precision(cfg)
    opened = open_artifact(cfg.model)
    if precision and opened.record.get("precision") == "int8":
        raise UserError(f"{cfg.model}: an ONNX Runtime INT8 graph (its fused and quantized ops "
                        f"are ONNX Runtime's own); export OpenVINO from the FP32 model, or "
                        f"quantize for OpenVINO with `edgebert quantize --target openvino-int8`")
    forward, parent_format = parent_forward(opened)
    dev = opened.encode("dev")
    ref = opened.outputs(forward, dev)
    with artifact.building(out, "export", to_dict(cfg), [str(opened.path)]) as work:
        target = work / fmt.file
        built: dict = {}
        checked = ref  # what the export must match: its parent (an INT8 program: its reference)
        if cfg.format == "executorch":
            if parent_format != "pytorch":
                raise UserError(f"{cfg.model}: ExecuTorch needs PyTorch weights "
                                f"(model.safetensors); export from the FP32 model")
            got_forward, checked, built = executorch_program(cfg, opened, target, dev, ref, log)
        elif cfg.format == "torchscript":
            if parent_format != "pytorch":
                raise UserError(f"{cfg.model}: TorchScript needs PyTorch weights "
                                f"(model.safetensors)")
            export_torchscript(load_torch(opened), opened.kind, target)
            got_forward = torchscript_forward(target)
        else:
            onnx_path = work / "model.onnx"
            if parent_format == "onnx":
                onnx_path.write_bytes((opened.path / "model.onnx").read_bytes())
            else:
                export_onnx(load_torch(opened), opened.kind, onnx_path, cfg.opset)
            if cfg.format == "ort" and not cfg.with_tokenizer:
                target = convert_to_ort(onnx_path, work)
                onnx_path.unlink()
            if cfg.format == "openvino":
                from edgebert.formats.openvino import open_openvino, save_ir
                from edgebert.predict import one_at_a_time, runner_forward

                save_ir(onnx_path, target, precision)
                onnx_path.unlink()
                # checked and scored one text at a time, as an app runs it (static shapes
                # per length bucket: formats/openvino.py)
                got_forward = one_at_a_time(runner_forward(
                    open_openvino(target, record={"inference_precision": precision}),
                    opened.kind))
            else:
                got_forward = ort_forward(session(onnx_path if cfg.with_tokenizer else target),
                                          opened.kind)
        got_dev = opened.outputs(got_forward, dev)
        parity = compare(ref, got_dev, opened.kind)
        against, what = parity, f"{cfg.format}{' ' + precision if precision else ''} export"
        max_diff, agreement = TOLERANCES[precision or "fp32"]
        if checked is not ref:  # an INT8 program: against its PT2E reference
            built["lowering_parity"] = against = compare(checked, got_dev, opened.kind)
            what, (max_diff, agreement) = "executorch int8 export (against its PT2E " \
                                          "reference)", INT8_LOWERING
        require(against, f"{what} of {cfg.model}",
                max_diff if cfg.max_abs_diff is None else cfg.max_abs_diff,
                agreement if cfg.min_agreement is None else cfg.min_agreement)
        text = _with_tokenizer(cfg, onnx_path, opened, log) if cfg.with_tokenizer else None
        if text:
            target, scores = work / fmt.file, text["scores"]
        else:
            # scored as quantize scored its parent
            got_forward = scored_as_run(got_forward, opened.record.get("precision") == "int8")
            scores = {"dev": opened.score(got_forward, "dev", dev, got_dev),
                      "test": opened.score(got_forward, "test")}
        copy_tokenizer(opened.path, work)
        parent = artifact.read_json(opened.path / "metrics.json")
        metrics = {**scores, "metric": opened.task.metric, "parity": parity, "format": cfg.format,
                   "precision": "int8" if cfg.precision == "int8" else opened.record.get(
                       "precision", "fp32"),
                   "size_mb": sum((work / n).stat().st_size for n in fmt.files()) / 1e6,
                   "params": parent.get("params"),
                   # a cut position table travels with the graph (bench and evaluate read it)
                   "positions": parent.get("positions")}
        if text:
            metrics |= {"text_parity": text["parity"],
                        "size_without_tokenizer_mb": text["plain_mb"]}
        metrics |= built  # ExecuTorch: the delegate's leftovers, the INT8 guard's record
        log(f"{cfg.format}: max |delta logits| {parity['max_abs_diff']:.2e}"
            f"{agreement_text(parity, opened.kind)}, {metrics['size_mb']:.1f} MB")
        if "lowering_parity" in built:
            log(f"{cfg.format} int8 against its PT2E reference: max |delta logits| "
                f"{built['lowering_parity']['max_abs_diff']:.2e}"
                f"{agreement_text(built['lowering_parity'], opened.kind)}")
        if precision:  # what it runs in, wherever it runs; and the CPU that chose it
            from edgebert.cpu import cpu_flags

            metrics["inference_precision"] = precision
            built = {"inference_precision": precision, "built_on": cpu_flags()}
            if metrics["precision"] == "fp32":
                metrics["precision"] = precision
        record = {"stage": "export", "parent": cfg.model, "format": cfg.format,
                  "precision": metrics["precision"], **(built if precision else {}),
                  "task": opened.record["task"],
                  "file": target.name, "input": "text" if text else "ids", "config": to_dict(cfg)}
        return artifact.finish(work, out, record, metrics)
