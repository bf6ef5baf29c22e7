"""The graph rewrite: ONNX Runtime's fused embedding taken apart, its word table read
through a low-bit codec (codecs.py).

The table is read one row per token, never multiplied, so it can be stored coarser than
the weights of a MatMul. The rest of the fused embedding (position and token-type tables,
LayerNorm) keeps its precision, so the rewrite is:

    (Q)EmbedLayerNormalization(ids, types, mask)  ->
        LayerNormalization(lookup(words, ids)
                           + Gather(positions, 0..S-1) + Gather(types, types))
        (the low-bit rows come out as FP32, the 8-bit rows dequantized after the Gather),
        and its mask index, ReduceSum(mask) per sequence, as the attention ops read it

The low-bit table is built from the table the graph holds (FP32, or INT8 dequantized: that
rounding is a small fraction of a 4-bit step). What the bits cost is for the accuracy guard
to judge, as for any lossy step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.stages.quantize.embeddings.codecs import CODECS


@dataclass
class WordTable:
    """What the rewrite made: the table's shape, codec, bytes before and after, and error."""
    rows: int
    hidden: int
    block_size: int
    """Values per scale (4 bits) or per code (product-quantized: the sub-vector)."""
    bytes_before: int
    bytes_after: int
    max_abs_error: float
    """Largest |low-bit value - table value|, in steps of a symmetric 8-bit table
    (max|x|/127)."""

    @property
    def mb_before(self) -> float:
        return self.bytes_before / 1e6

    @property
    def mb_after(self) -> float:
        return self.bytes_after / 1e6

    bits: int = 4
    tuning: dict | None = None
    """1 bit: what codebook tuning measured (codebooks.tune_codebooks)."""

    def record(self) -> dict:
        return {"bits": self.bits, "rows": self.rows, "hidden": self.hidden,
                "block_size": self.block_size,
                "mb_before": round(self.mb_before, 3), "mb_after": round(self.mb_after, 3),
                "max_abs_error": round(self.max_abs_error, 6)} \
            | ({"codebook_tuning": self.tuning} if self.tuning else {})


def _array(inits: dict, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(inits[name])


def _dequantized(inits: dict, q: str, scale: str, zero: str) -> np.ndarray:
    return (_array(inits, q).astype(np.float32) - _array(inits, zero).astype(np.float32)) \
        * _array(inits, scale).astype(np.float32)


def _fp32_table(graph, inits: dict, name: str, src: Path) -> tuple[np.ndarray, int, object]:
    """(values, bytes stored, the DequantizeLinear that made it or None) of an FP32 op's
    table input: an initializer, or a static QDQ graph's per-tensor DequantizeLinear of one."""
    if name in inits:
        a = _array(inits, name)
        return a.astype(np.float32), a.nbytes, None
    dq = next((n for n in graph.node if name in n.output and n.op_type == "DequantizeLinear"),
              None)
    if dq is None or any(i not in inits for i in dq.input) \
            or _array(inits, dq.input[1]).size != 1:
        raise UserError(f"{src}: the word table ({name}) is neither a weight nor a "
                        f"per-tensor dequantized one; not rewritten")
    zero = dq.input[2] if len(dq.input) > 2 else None
    q = _array(inits, dq.input[0])
    values = (q.astype(np.float32) - (_array(inits, zero).astype(np.float32) if zero else 0)) \
        * _array(inits, dq.input[1]).astype(np.float32)
    return values, q.nbytes, dq


def word_embeddings(src: Path, dst: Path, bits: int = 4, block: int | None = None,
                    weights: np.ndarray | None = None, tune=None) -> WordTable:
    """Rewrite the fused embedding of an INT8 graph (see the module doc) with its word table
    at `bits` (codecs.CODECS: 4, blocks of `block`; 2 or 1, product-quantized, rows weighted
    by `weights`, the codebooks then trained by `tune(codes, books) -> (books, record)` when
    given): ORT's QEmbedLayerNormalization (dynamic) or an EmbedLayerNormalization left in
    FP32 or fed by dequantized tables (static QDQ).

    >>> # word_embeddings(Path("int8/model.onnx"), Path("int8/model4.onnx"), bits=4)
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    fused = [n for n in graph.node
             if n.op_type in ("QEmbedLayerNormalization", "EmbedLayerNormalization")]
    if len(fused) != 1:
        raise UserError(f"{src}: low-bit embeddings need one fused embedding "
                        f"((Q)EmbedLayerNormalization, ORT's fusion); found {len(fused)}")
    node = fused[0]
    quantized = node.op_type == "QEmbedLayerNormalization"
    # both ops: ids, types, word, position, type, gamma, beta, mask; then the quantized one
    # has the five scales and the five zero points in that order, the FP32 one position ids
    # (ORT's contrib op schemas)
    ids, types, word, pos, typ, gamma, beta, mask = (list(node.input) + [""] * 8)[:8]
    if not types or not typ:
        raise UserError(f"{src}: the fused embedding has no token types; not rewritten")
    inits = {t.name: t for t in graph.initializer}
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
    p = node.name
    new, nodes, dropped, dq_word = [], [], set(), None
    if quantized:
        scales, zeros = node.input[8:13], node.input[13:18]
        stored = _array(inits, word).nbytes
        table = _dequantized(inits, word, scales[0], zeros[0])
        new += [numpy_helper.from_array(_dequantized(inits, gamma, scales[3], zeros[3]),
                                        f"{p}_gamma"),
                numpy_helper.from_array(_dequantized(inits, beta, scales[4], zeros[4]),
                                        f"{p}_beta")]
        dropped |= {word, gamma, beta, scales[0], zeros[0], scales[3], zeros[3], scales[4],
                    zeros[4]}
        gamma, beta = f"{p}_gamma", f"{p}_beta"
        # position and type rows stay 8-bit: gathered, then dequantized
        reads = {"pos": (pos, scales[1], zeros[1]), "type": (typ, scales[2], zeros[2])}
        position_ids = ""
    else:
        table, stored, dq_word = _fp32_table(graph, inits, word, src)
        dropped |= {word} | (set(dq_word.input) if dq_word is not None else set())
        reads = {"pos": (pos,), "type": (typ,)}
        position_ids = node.input[8] if len(node.input) > 8 else ""
    words = CODECS[bits].lookup(table, ids, f"{p}_w", p, block=block, weights=weights,
                                tune=tune)
    new += words.inits
    nodes += words.nodes
    if not position_ids:  # positions 0..S-1, as the fused op takes them without ids
        position_ids = f"{p}_positions"
        new += [numpy_helper.from_array(np.array(0, np.int64), f"{p}_zero_i"),
                numpy_helper.from_array(np.array(1, np.int64), f"{p}_one_i")]
        nodes += [
            helper.make_node("Shape", [ids], [f"{p}_shape"], name=f"{p}_shape", start=1, end=2),
            helper.make_node("Squeeze", [f"{p}_shape"], [f"{p}_len"], name=f"{p}_len"),
            helper.make_node("Range", [f"{p}_zero_i", f"{p}_len", f"{p}_one_i"],
                             [position_ids], name=f"{p}_positions")]
    for what, at in (("pos", position_ids), ("type", types)):
        table_in, *scale_zero = reads[what]
        gathered = f"{p}_{what}_rows"
        nodes.append(helper.make_node("Gather", [table_in, at], [gathered], name=f"{p}_{what}"))
        if scale_zero:
            nodes.append(helper.make_node("DequantizeLinear", [gathered, *scale_zero],
                                          [f"{p}_{what}_fp32"], name=f"{p}_{what}_dq"))
            gathered = f"{p}_{what}_fp32"
        nodes.append(helper.make_node("Add", [f"{p}_w" if what == "pos" else f"{p}_wp",
                                              gathered],
                                      [f"{p}_wp" if what == "pos" else f"{p}_sum"],
                                      name=f"{p}_add_{what}"))
    out = node.output[0]
    nodes.append(helper.make_node("LayerNormalization", [f"{p}_sum", gamma, beta], [out],
                                  name=f"{p}_ln", axis=-1, epsilon=eps))
    if len(node.output) > 1 and node.output[1]:
        if not mask:
            raise UserError(f"{src}: the fused embedding gives a mask index without a mask")
        # the attention ops' mask: tokens per sequence (right padding)
        new.append(numpy_helper.from_array(np.array([1], np.int64), f"{p}_axis1"))
        nodes.append(helper.make_node("ReduceSum", [mask, f"{p}_axis1"], [node.output[1]],
                                      name=f"{p}_mask_index", keepdims=0))
    if len(node.output) > 2 and node.output[2]:  # the sum before LayerNorm, when read
        nodes.append(helper.make_node("Identity", [f"{p}_sum"], [node.output[2]],
                                      name=f"{p}_sum"))
    at = list(graph.node).index(node)
    kept = [n for n in graph.node if n is not node]
    del graph.node[:]
    graph.node.extend(kept[:at] + nodes + kept[at:])
    still_read = {i for n in graph.node for i in n.input}
    if dq_word is not None and word not in still_read:
        graph.node.remove(dq_word)
        still_read = {i for n in graph.node for i in n.input}
    for name in dropped - still_read:
        if name in inits:
            graph.initializer.remove(inits[name])
    graph.initializer.extend(new)
    onnx.save(model, str(dst))
    step = float(np.abs(table).max()) / 127  # an 8-bit symmetric table's step, for scale
    return WordTable(rows=table.shape[0], hidden=table.shape[1], block_size=words.block,
                     bytes_before=stored, bytes_after=words.nbytes, bits=bits,
                     max_abs_error=float(np.max(np.abs(words.approx - table))) / step,
                     tuning=words.tuning)

