"""ONNX and ORT format: the writers of `--format onnx` and `--format ort`, and the one-file
model of either with the tokenizer inside (`--with-tokenizer`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgebert.errors import UserError
from edgebert.formats import extensions_library, session
from edgebert.predict import ort_forward
from edgebert.stages.export.config import ExportConfig
from edgebert.stages.export.job import Job, Written


def write_onnx(job: Job) -> Written:
    """model.onnx, dynamic batch and sequence axes."""
    return Written(ort_forward(session(job.onnx()), job.opened.kind))


def write_ort(job: Job) -> Written:
    """model.ort, ONNX Runtime Mobile's format. With the tokenizer inside, the ONNX model is
    checked first and converted once the tokenizer is in its graph (the stage's last step)."""
    onnx_path = job.onnx()
    if job.cfg.with_tokenizer:
        return Written(ort_forward(session(onnx_path), job.opened.kind))
    target = convert_to_ort(onnx_path, job.work)
    onnx_path.unlink()
    return Written(ort_forward(session(target), job.opened.kind))


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


def with_tokenizer(cfg: ExportConfig, onnx_path: Path, opened, log) -> dict:
    """Replace the checked `onnx_path` (ids in) by the one-file model (text in): ONNX, or
    ORT format converted with the extensions' custom ops; every dev example checked."""
    import onnx

    from edgebert.predict import one_at_a_time
    from edgebert.stages.export import text_check, text_graph

    work = onnx_path.parent
    plain = onnx_path.rename(work / "ids_model.onnx")
    merged = text_graph.merge(plain, opened.path / "tokenizer.json", opened.kind,
                              list(opened.task.labels or []), opened.max_length)
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
