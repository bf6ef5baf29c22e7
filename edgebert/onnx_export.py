"""PyTorch -> ONNX: the one exporter that the export stage, quantize (its FP32 source)
and bundle (an artifact of PyTorch weights) share, so it lives in core.

The TorchScript-based exporter (`dynamo=False`) is used: its BERT graphs are
the patterns ONNX Runtime's transformer optimizer knows how to fuse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert import kinds
from edgebert.families import model_inputs


def export_onnx(model, kind: str, path: Path, opset: int = 17) -> Path:
    """Write `model` as ONNX with inputs input_ids / attention_mask / token_type_ids (those
    its family takes).

    >>> # export_onnx(model, "classification", Path("model.onnx"))
    """
    import torch

    from edgebert.plain_outputs import PlainOutputs

    model = model.eval().to("cpu")
    # transformers 5 picks the attention function at call time; its SDPA path traces to a
    # graph ORT's fuser does not match (Attention 0 of N), the eager one fuses. 4.x chose
    # the attention class at load, and its SDPA class traces to the fusable pattern.
    model.set_attn_implementation("eager")
    task = kinds.kind(kind)
    ids = torch.full(task.input_shape(2, 16), 5, dtype=torch.long)
    inputs = model_inputs(model)  # DistilBERT's graph has no token_type_ids
    dummy = tuple({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                   "token_type_ids": torch.zeros_like(ids)}[k] for k in inputs)
    names = list(task.outputs)
    in_axes, out_axes = task.input_axes(), task.output_axes()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow in HF code
        torch.onnx.export(PlainOutputs(model, kind), dummy, str(path),
                          input_names=list(inputs), output_names=names,
                          dynamic_axes={k: in_axes for k in inputs} | out_axes,
                          opset_version=opset, dynamo=False)
    pin_head_counts(path)
    return path


def pin_head_counts(path: Path) -> int:
    """Write each attention layer's head count into its q/k/v Reshape, in place; returns how
    many reshapes changed.

    transformers 5 reshapes q, k and v to (..., -1, head_size): the head count is left for
    the runtime to infer, and ORT's fuser then assumes the `num_heads` it is given for every
    layer, wrong wherever pruning left a layer fewer heads (the fused graph drifts). The count
    is the projection's output width over head_size, read off its weight. 4.x writes it."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consts |= {n.output[0]: numpy_helper.to_array(a.t) for n in graph.node
               if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    producer = {o: n for n in graph.node for o in n.output}
    changed, replaced = 0, set()
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in producer:
            continue
        concat = producer[node.input[1]]
        if concat.op_type != "Concat" or len(concat.input) != 4:
            continue
        heads, size = (consts.get(concat.input[i]) for i in (2, 3))
        width = _projection_width(node.input[0], producer, consts)
        if heads is None or size is None or width is None or heads.size != 1 or size.size != 1:
            continue
        head_size = int(size.reshape(-1)[0])
        if int(heads.reshape(-1)[0]) != -1 or head_size <= 0:
            continue
        count = np.array([width // head_size], dtype=heads.dtype)
        name = f"edgebert_heads_{count[0]}"
        if name not in consts:
            graph.initializer.append(numpy_helper.from_array(count, name))
            consts[name] = count
        replaced.add(concat.input[2])
        concat.input[2] = name
        changed += 1
    used = {i for n in graph.node for i in n.input}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] in replaced
                 and n.output[0] not in used]:
        graph.node.remove(node)  # the -1s: ORT warns about unused constants
    for init in [i for i in graph.initializer if i.name in replaced - used]:
        graph.initializer.remove(init)
    if changed:
        onnx.save(model, str(path))
    return changed


def _projection_width(name: str, producer: dict, consts: dict) -> int | None:
    """Output width of Add(MatMul(x, W), b): W's last dimension, or None."""
    node = producer.get(name)
    if node is None or node.op_type != "Add":
        return None
    for inp in node.input:
        matmul = producer.get(inp)
        if matmul is not None and matmul.op_type == "MatMul" and matmul.input[1] in consts:
            return int(consts[matmul.input[1]].shape[-1])
    return None

