"""ONNX Runtime graph fusions and INT8 quantization (dynamic; static QDQ with calibration).

    fused = optimize(fp32, dst, heads=12, hidden=384, layers=6)   # counts checked
    quantize_dynamic_onnx(fused.path, int8_path, target("x86-vnni"))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.targets import Target

# ops whose count must reach the layer count for the fusion to be whole
FUSIONS = ("Attention", "SkipLayerNormalization", "BiasGelu")


@dataclass
class Fused:
    path: Path
    counts: dict[str, int]


def optimize(src: Path, dst: Path, heads: int, hidden: int, layers: int,
             gelu: bool = True, shared: bool = False) -> Fused:
    """Apply ORT's BERT fusions; fail when fewer fused ops than layers appear.

    A graph the optimizer does not recognise (a changed attention pattern, heads
    that differ per layer after pruning) is left unfused silently: we refuse that.
    (A wrong `heads` alone is not such a case: ORT detects the real count.)
    `shared`: the layers share their weights (ALBERT). ORT's fuser does not match every
    repetition's attention (5 of 6 in `benchmarks/albert_int8.py`, 3 of 4 on a 4-layer
    one); the unfused one stays MatMul + Softmax, still INT8. One of each fused op proves
    the graph was understood; the counts are recorded. Measured there: top-1 agreement
    with FP32 99.9 %, 1.60x over the FP32 export.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden,
                           opt_level=1)
    stats = model.get_fused_operator_statistics()
    counts = {"EmbedLayerNormalization": stats.get("EmbedLayerNormalization", 0),
              "Attention": stats.get("Attention", 0) + stats.get("MultiHeadAttention", 0),
              "SkipLayerNormalization": stats.get("SkipLayerNormalization", 0),
              "BiasGelu": stats.get("BiasGelu", 0) + stats.get("FastGelu", 0)
              + stats.get("Gelu", 0)}
    required = [op for op in FUSIONS if gelu or op != "BiasGelu"]
    missing = {op: counts[op] for op in required if counts[op] < (1 if shared else layers)}
    if missing:
        raise UserError(f"{src}: graph fusion incomplete for {layers} layers "
                        f"({', '.join(f'{k} {v}' for k, v in missing.items())}); check the head "
                        f"count ({heads}) and hidden size ({hidden}) against the model")
    model.save_model_to_file(str(dst))
    return Fused(dst, counts)


def split_skip_layernorm(path: Path) -> int:
    """Rewrite every SkipLayerNormalization as (bias Add +) Sum + LayerNormalization, in
    place; returns how many.

    Why: ONNX Runtime 1.32's CPU SkipLayerNormalization kernel is slow. Measured (2-core
    AVX2, 2 threads, [1, 128, 384]): 151 us against 44 us for Add + LayerNormalization, and a
    3-layer INT8 student went from 3.21 to 2.55 ms per sequence (`benchmarks/int8.py` has the
    model-level figures). The fusion still runs first: its counts prove the graph was understood.
    The bias Add comes first, so that ORT's MatMulIntegerToFloat fusion takes it into the
    DynamicQuantizeMatMul before it (2-core Xeon with AMX: a 3-layer INT8 model 1.82 ->
    1.77 ms at 128 tokens, six Adds fewer; `benchmarks/int8_variants.py`); the residual sum is a Sum, which ORT's
    SkipLayerNormFusion does not match (it matches Add -> LayerNormalization). A test checks
    both on the graph ORT runs.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    if max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < 17:
        return 0  # LayerNormalization joined the default domain in opset 17; ours export 17
    nodes, count = [], 0
    for n in model.graph.node:
        if n.op_type != "SkipLayerNormalization":
            nodes.append(n)
            continue
        count += 1
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma = n.input[:3]
        beta = n.input[3] if len(n.input) > 3 else ""
        bias = n.input[4] if len(n.input) > 4 else ""
        total = f"{n.name}_sum"
        if bias:  # the bias first, straight after the MatMul: ORT's MatMulIntegerToFloat
            # fusion then takes it into DynamicQuantizeMatMul as its bias input, one Add fewer
            nodes.append(helper.make_node("Add", [x, bias], [f"{total}_biased"],
                                          name=f"{n.name}_add_bias"))
            x = f"{total}_biased"
        # Sum, not Add: ORT's SkipLayerNormFusion matches Add -> LayerNormalization at load
        # and would undo the split; it does not match Sum (the same sum, the same speed)
        nodes.append(helper.make_node("Sum", [x, skip], [total], name=f"{n.name}_add"))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []),
                                      [n.output[0]], name=f"{n.name}_ln", axis=-1, epsilon=eps))
        if len(n.output) > 3 and n.output[3]:  # the residual sum, when a later layer reads it
            nodes.append(helper.make_node("Identity", [total], [n.output[3]], name=f"{n.name}_sum"))
    if count:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        onnx.save(model, str(path))
    return count


def quantize_dynamic_onnx(src: Path, dst: Path, p: Target,
                          exclude: list[str] | None = None) -> Path:
    """INT8 weights, activations quantized at run time (u8), embeddings included."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the dynamic quantizer first rewrites a Gemm as MatMul + Add named "<gemm>_MatMul"
    exclude = [x for name in exclude or [] for x in (name, f"{name}_MatMul")]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=p.per_channel,
                     reduce_range=p.reduce_range, nodes_to_exclude=exclude,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


class _Reader:
    """ORT CalibrationDataReader over padded batches of encoded features."""

    def __init__(self, batches: list[dict[str, np.ndarray]], names: set[str]):
        self._it: Iterator = iter([{k: v for k, v in b.items() if k in names} for b in batches])

    def get_next(self):
        return next(self._it, None)


def quantize_static_onnx(src: Path, dst: Path, p: Target, batches: list[dict[str, np.ndarray]],
                         method: str = "minmax", exclude: list[str] | None = None) -> Path:
    """QDQ INT8 with activation ranges calibrated on `batches` (training examples)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise UserError(f"--calibration: '{method}' is not one of {', '.join(methods)}")
    names = {i.name for i in onnx.load(str(src), load_external_data=False).graph.input}
    typed = onnx.load(str(with_types(src, dst.with_name(dst.stem + ".typed.onnx"))))
    # a ModelProto, not a path: ORT then shape-infers in a private temporary directory
    # instead of beside the file (a "-inferred" sibling that went missing once, mid-guard)
    quantize_static(typed, str(dst), _Reader(batches, names), quant_format=QuantFormat.QDQ,
                    activation_type=getattr(QuantType, p.static_activations),
                    weight_type=QuantType.QInt8, per_channel=p.per_channel,
                    reduce_range=p.reduce_range, calibrate_method=methods[method],
                    nodes_to_exclude=exclude or [],
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT,
                                   "ActivationSymmetric": p.static_activations == "QInt8",
                                   "CalibMovingAverage": method == "minmax"})
    return dst


def with_types(src: Path, dst: Path) -> Path:
    """Annotate every tensor's type with ORT's symbolic shape inference.

    The QDQ quantizer quantizes only tensors whose type it knows, and ONNX's own
    shape inference does not know ORT's fused ops (Attention, SkipLayerNorm...):
    without this it skips most of a fused BERT and fails on the pooler's bias.
    """
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(src))
    typed = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    onnx.save(typed, str(dst))
    return dst


def quantizable_nodes(path: Path) -> list[str]:
    """Names of the nodes the quantizers would touch (MatMul-like and embedding ops)."""
    import onnx

    ops = {"MatMul", "Attention", "Gather", "EmbedLayerNormalization", "Gemm"}
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ops]
