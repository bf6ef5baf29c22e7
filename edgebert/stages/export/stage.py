"""The export stage: a model artifact in, an ONNX / ORT / OpenVINO / ExecuTorch /
TorchScript artifact out, refused when it drifts from its parent on dev examples.

Each format's writer makes its model file (`Format.writer`, in a module beside this one:
onnx.py, openvino.py, executorch.py, torchscript.py); this stage checks, scores and
records every format alike (`job.py` says what a writer is given and returns)."""

from __future__ import annotations

import pkgutil
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import copy_tokenizer, load_torch, open_artifact
from edgebert.config import to_dict
from edgebert.errors import UserError
from edgebert.formats import format_named, require_model_file, session
from edgebert.parity import TOLERANCES, agreement_text, compare, require
from edgebert.predict import ort_forward, scored_as_run, torch_forward
from edgebert.stages.export.config import ExportConfig
from edgebert.stages.export.job import Job
from edgebert.stages.export.onnx import with_tokenizer


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


def run(cfg: ExportConfig, log=print) -> Path:
    """Export `cfg.model` to `cfg.format` in `cfg.out` with the format's writer
    (`Format.writer`), parity-checked on the dev split.

    >>> # run(ExportConfig(model="runs/rt/student", format="onnx", out="runs/rt/onnx"))
    """
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
        job = Job(cfg, opened, parent_format, dev, ref, precision, work, log)
        written = pkgutil.resolve_name(fmt.writer)(job)
        built = dict(written.record or {})
        got_dev = opened.outputs(written.forward, dev)
        parity = compare(ref, got_dev, opened.kind)
        against, what = parity, f"{cfg.format}{' ' + precision if precision else ''} export"
        if written.reference:  # an INT8 program: against its own reference
            built["lowering_parity"] = against = compare(written.reference.outputs, got_dev,
                                                         opened.kind)
            what, tolerance = written.reference.what, written.reference.tolerance
        else:
            tolerance = TOLERANCES[precision or "fp32"]
        given = (cfg.max_abs_diff, cfg.min_agreement)
        if tolerance or given != (None, None):  # what the user gives is held to, always
            tolerance = tolerance or (float("inf"), 0.0)
            require(against, f"{what} of {cfg.model}",
                    tolerance[0] if given[0] is None else given[0],
                    tolerance[1] if given[1] is None else given[1])
        text = with_tokenizer(cfg, work / "model.onnx", opened, log) if cfg.with_tokenizer \
            else None
        if text:
            scores = text["scores"]
        else:
            # scored as quantize scored its parent
            got_forward = scored_as_run(written.forward, opened.record.get("precision") == "int8")
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
                  "file": fmt.file, "input": "text" if text else "ids", "config": to_dict(cfg)}
        return artifact.finish(work, out, record, metrics)
