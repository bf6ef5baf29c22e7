"""The FP32 ONNX graph every quantizer starts from, checked against the model it came from."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebert.artifacts_io import load_torch
from edgebert.formats import require_model_file, session
from edgebert.onnx_export import export_onnx
from edgebert.parity import compare, require
from edgebert.predict import ort_forward, torch_forward


def fp32_onnx(opened, dst: Path, dev, what: str):
    """Write `opened`'s FP32 ONNX graph to `dst`: exported from its PyTorch weights and
    checked on `dev` (max |delta logits| 1e-3, top-1 agreement 99.9 %), or copied from its
    model.onnx (a corrupt file fails, named). Returns (the PyTorch model or None, the
    source format)."""
    source, source_format = require_model_file(opened.path, ("model.safetensors", "model.onnx"),
                                               "to quantize")
    if source_format != "pytorch":
        session(source)
        shutil.copy2(source, dst)
        return None, source_format
    model = load_torch(opened)
    export_onnx(model, opened.kind, dst)
    parity = compare(opened.outputs(torch_forward(model), dev),
                     opened.outputs(ort_forward(session(dst), opened.kind), dev), opened.kind)
    require(parity, f"FP32 ONNX export of {what}", 1e-3, 0.999)
    return model, source_format
