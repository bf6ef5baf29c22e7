"""PyTorch -> ONNX, and running ONNX models with ONNX Runtime.

The TorchScript-based exporter (`dynamo=False`) is used: its BERT graphs are
the patterns ONNX Runtime's transformer optimizer knows how to fuse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.predict import INPUTS, Forward

AXES = {0: "batch", 1: "sequence"}


def output_names(kind: str) -> list[str]:
    return ["start_logits", "end_logits"] if kind == "qa" else ["logits"]


def export_onnx(model, kind: str, path: Path, opset: int = 17) -> Path:
    """Write `model` as ONNX with inputs input_ids / attention_mask / token_type_ids.

    >>> # export_onnx(model, "classification", Path("model.onnx"))
    """
    import torch

    from edgebert.export.wrap import PlainOutputs

    model = model.eval().to("cpu")
    ids = torch.full((2, 16), 5, dtype=torch.long)
    dummy = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = output_names(kind)
    out_axes = {n: ({0: "batch"} if kind in ("classification", "pair", "regression") else AXES)
                for n in names}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow in HF code
        torch.onnx.export(PlainOutputs(model, kind), dummy, str(path), input_names=list(INPUTS),
                          output_names=names, dynamic_axes={k: AXES for k in INPUTS} | out_axes,
                          opset_version=opset, dynamo=False)
    return path


def session(path: Path | bytes, threads: int | None = None, exact_int8: bool = False,
            custom_ops: bool = False):
    """An ORT CPU session over a file or serialized model bytes. `exact_int8`: on x86
    without VNNI use U8U8 products instead of the U8S8 ones whose int16 pair sums
    saturate (ORT's `session.x64quantprecision`): slower, but the reference an ARM (SDOT,
    no saturation) result should match. `custom_ops`: register onnxruntime-extensions'
    ops (the tokenizer-in-graph models)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if exact_int8:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    if custom_ops:
        from edgebert.export.text_graph import extensions_library

        opts.register_custom_ops_library(extensions_library())
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = path if isinstance(path, bytes) else str(path)
    try:
        return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own types (InvalidProtobuf, Fail, ...)
        from edgebert.errors import UserError

        where = "model bytes" if isinstance(path, bytes) else path
        raise UserError(f"{where}: ONNX Runtime cannot load it ({str(err).splitlines()[0][:200]});"
                        f" the file is corrupt or not an ONNX model, export it again") from None


def ort_forward(sess, kind: str) -> Forward:
    """A forward over an ONNX Runtime session, shaped like `predict.torch_forward`."""
    wanted = {i.name for i in sess.get_inputs()}

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        outs = sess.run(None, {k: v for k, v in batch.items() if k in wanted})
        return np.stack(outs[:2], 1) if kind == "qa" else outs[0]

    return forward
