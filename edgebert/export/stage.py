"""The export stage: a model artifact in, an ONNX / ORT / TorchScript artifact out,
refused when it drifts from its parent on dev examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import copy_tokenizer, load_torch, open_artifact
from edgebert.config import ExportConfig, to_dict
from edgebert.errors import UserError
from edgebert.export.onnx import export_onnx, ort_forward, session
from edgebert.export.parity import compare, require
from edgebert.export.torchscript import export_torchscript, torchscript_forward
from edgebert.predict import torch_forward

FILES = {"onnx": "model.onnx", "ort": "model.ort", "torchscript": "model.pt"}


def parent_forward(opened):
    """Forward of the input artifact: PyTorch weights, else its ONNX model."""
    if (opened.path / "model.safetensors").exists():
        return torch_forward(load_torch(opened)), "pytorch"
    if (opened.path / "model.onnx").exists():
        return ort_forward(session(opened.path / "model.onnx"), opened.kind), "onnx"
    raise UserError(f"{opened.path}: no model.safetensors or model.onnx to export from")


def convert_to_ort(onnx_path: Path, work: Path) -> Path:
    """ONNX Runtime's own converter; the .ort file lands beside the .onnx one."""
    proc = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort",
                           str(onnx_path), "--output_dir", str(work)],
                          capture_output=True, text=True)
    made = work / (onnx_path.stem + ".ort")
    if proc.returncode != 0 or not made.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{onnx_path}: ORT format conversion failed ({tail[0]})")
    for extra in work.glob("*.required_operators*.config"):
        extra.rename(work / "required_operators.config")
    return made


def export(cfg: ExportConfig, log=print) -> Path:
    """Export `cfg.model` to `cfg.format` in `cfg.out`, parity-checked on the dev split.

    >>> # export(ExportConfig(model="runs/rt/student", format="onnx", out="runs/rt/onnx"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "export"):
        return out
    opened = open_artifact(cfg.model)
    forward, parent_format = parent_forward(opened)
    dev = opened.encode("dev")
    ref = opened.outputs(forward, dev)
    work = artifact.begin(out, "export", to_dict(cfg), inputs=[str(opened.path)])
    try:
        target = work / FILES[cfg.format]
        if cfg.format == "torchscript":
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
            if cfg.format == "ort":
                target = convert_to_ort(onnx_path, work)
                onnx_path.unlink()
            got_forward = ort_forward(session(target), opened.kind)
        parity = compare(ref, opened.outputs(got_forward, dev), opened.kind)
        require(parity, f"{cfg.format} export of {cfg.model}", cfg.max_abs_diff,
                cfg.min_agreement)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)  # nothing half-made survives a refusal
        raise
    copy_tokenizer(opened.path, work)
    metrics = {"dev": opened.score(got_forward, "dev", dev),
               "test": opened.score(got_forward, "test"),
               "metric": opened.task.metric, "parity": parity, "format": cfg.format,
               "precision": opened.record.get("precision", "fp32"),
               "size_mb": target.stat().st_size / 1e6,
               "params": artifact.read_json(opened.path / "metrics.json").get("params")}
    log(f"{cfg.format}: max |delta logits| {parity['max_abs_diff']:.2e}, top-1 agreement "
        f"{parity['top1_agreement']:.2%}, {metrics['size_mb']:.1f} MB")
    record = {"stage": "export", "parent": cfg.model, "format": cfg.format,
              "precision": metrics["precision"], "task": opened.record["task"],
              "file": target.name, "config": to_dict(cfg)}
    return artifact.finish(work, out, record, metrics)
