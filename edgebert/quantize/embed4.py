"""4-bit word embeddings: the biggest tensor of a small INT8 model, made half as big.

After dynamic INT8, a 3-layer student's word table (vocabulary x hidden, one byte each) is
most of the file: 5.2 of the 7.4 MB of the default recipe's Rotten Tomatoes artifact. It is
read one row per token, never multiplied, so it can be stored coarser than the weights of a
MatMul: 4 bits per value with a scale and zero point per block of `block_size` values of a
row (ONNX Runtime's GatherBlockQuantized, com.microsoft, which unpacks only the rows asked
for). The rest of the fused embedding (position and token-type tables, LayerNorm) stays as
it was, so the rewrite is:

    QEmbedLayerNormalization(ids, types, mask)  ->
        LayerNormalization(GatherBlockQuantized(words4, ids)
                           + Dequantize(Gather(positions8, 0..S-1))
                           + Dequantize(Gather(types8, types)))
        and its mask index, ReduceSum(mask) per sequence, as QAttention reads it

The 4-bit table is built from the INT8 one (dequantized): that rounding is at most 1/34 of
a 4-bit step, so it adds nothing measurable. What the 4 bits cost is for the accuracy guard
to judge, as for any lossy step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert.errors import UserError

BLOCK_SIZE = 64
"""Values per scale in a table row: 384 / 64 = 6 scales (fp32) and zero points (4-bit) per
row, 0.07 extra bytes per value. ORT allows powers of two from 16. Measured on two INT8
artifacts (dev / test accuracy, points against the 8-bit table; `edgebert evaluate`):
Rotten Tomatoes block 32 -0.24 / 0.00, block 64 +0.24 / -0.08; trec-50 block 32 -0.93 /
-0.37, block 64 -0.74 / +0.37: noise-level either way (one dev example is 0.08 and 0.19
points), so the smaller file."""


@dataclass
class Embed4:
    rows: int
    hidden: int
    block_size: int
    bytes_before: int
    bytes_after: int
    max_abs_error: float
    """Largest |4-bit value - INT8 value| over the table (the INT8 table's units)."""

    @property
    def mb_before(self) -> float:
        return self.bytes_before / 1e6

    @property
    def mb_after(self) -> float:
        return self.bytes_after / 1e6

    def record(self) -> dict:
        return {"rows": self.rows, "hidden": self.hidden, "block_size": self.block_size,
                "mb_before": round(self.mb_before, 3), "mb_after": round(self.mb_after, 3),
                "max_abs_error": round(self.max_abs_error, 6)}


SHRINKS = tuple(np.linspace(1.0, 0.7, 7))
"""Clipping ranges tried per block (fractions of its min..max): the least squared error
wins. Against min..max on the tables above, block 64: dev +5 and +1 examples, test -4 and
+1: kept for the smaller error, not a measured gain."""


def block_for(hidden: int) -> int:
    """The largest block of BLOCK_SIZE or less that ORT takes (a power of two from 16) and that
    splits a row of `hidden` into an even count (two zero points pack into a byte).

    >>> block_for(384), block_for(768), block_for(32)
    (64, 64, 16)
    """
    block = BLOCK_SIZE
    while block >= 16:
        if hidden % (2 * block) == 0:
            return block
        block //= 2
    raise UserError(f"4-bit embeddings: a row of {hidden} values splits into no even count "
                    f"of blocks of 16, 32 or 64")


def quantize_rows(table: np.ndarray, block: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric 4-bit per block of a row: (packed uint8 [V, H/2] with the first of each
    pair in the low nibble, scales [V, H/block], packed zero points [V, H/block/2], the
    dequantized table). Each block's min and max map to 0 and 15."""
    rows, hidden = table.shape
    blocks = table.reshape(rows, hidden // block, block).astype(np.float32)
    lo = np.minimum(blocks.min(-1), 0.0)  # 0 stays exact (a zero row: padding)
    hi = np.maximum(blocks.max(-1), 0.0)
    best = None
    for shrink in SHRINKS:  # per block, the clipping range with the least squared error
        scale = (hi - lo) * shrink / 15.0
        scale[scale == 0] = 1.0
        zero = np.clip(np.round(-lo * shrink / scale), 0, 15)
        q = np.clip(np.round(blocks / scale[..., None]) + zero[..., None], 0, 15)
        approx = (q - zero[..., None]) * scale[..., None]
        err = ((approx - blocks) ** 2).sum(-1)
        if best is None:
            best = [scale, zero, q, approx, err]
            continue
        better = err < best[4]
        for i, x in enumerate((scale, zero, q, approx, err)):
            best[i][better] = x[better]
    scale, zero, q, approx, _ = best
    dequantized = approx.reshape(rows, hidden)
    q = q.astype(np.uint8).reshape(rows, hidden)
    zero = zero.astype(np.uint8)
    return ((q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8), scale.astype(np.float32),
            (zero[:, 0::2] | (zero[:, 1::2] << 4)).astype(np.uint8), dequantized)


def _array(inits: dict, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(inits[name])


def _dequantized(inits: dict, q: str, scale: str, zero: str) -> np.ndarray:
    return (_array(inits, q).astype(np.float32) - _array(inits, zero).astype(np.float32)) \
        * _array(inits, scale).astype(np.float32)


def word_embeddings_4bit(src: Path, dst: Path, block: int | None = None) -> Embed4:
    """Rewrite the QEmbedLayerNormalization of a dynamic INT8 graph (see the module doc)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    fused = [n for n in graph.node if n.op_type == "QEmbedLayerNormalization"]
    if len(fused) != 1:
        raise UserError(f"{src}: 4-bit embeddings need one QEmbedLayerNormalization (a "
                        f"dynamic INT8 graph with ORT's embedding fusion); found {len(fused)}")
    node = fused[0]
    # inputs: ids, types, word, position, type, gamma, beta, mask, then the five scales
    # and the five zero points in the same order (ORT's contrib op schema)
    ids, types, word, pos, typ, gamma, beta, mask = node.input[:8]
    scales, zeros = node.input[8:13], node.input[13:18]
    if not types or not mask:
        raise UserError(f"{src}: the fused embedding has no token types or no mask input")
    inits = {t.name: t for t in graph.initializer}
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
    words8 = _array(inits, word)
    table = _dequantized(inits, word, scales[0], zeros[0])
    block = block or block_for(table.shape[1])
    packed, scale, zero, approx = quantize_rows(table, block)
    step8 = float(np.max(np.abs(_array(inits, scales[0]))))

    p = node.name
    new = [numpy_helper.from_array(packed, f"{p}_words4"),
           numpy_helper.from_array(scale, f"{p}_words4_scale"),
           numpy_helper.from_array(zero, f"{p}_words4_zero"),
           numpy_helper.from_array(_dequantized(inits, gamma, scales[3], zeros[3]), f"{p}_gamma"),
           numpy_helper.from_array(_dequantized(inits, beta, scales[4], zeros[4]), f"{p}_beta"),
           numpy_helper.from_array(np.array(0, np.int64), f"{p}_zero_i"),
           numpy_helper.from_array(np.array(1, np.int64), f"{p}_one_i"),
           numpy_helper.from_array(np.array([1], np.int64), f"{p}_axis1")]
    out, mask_index = node.output[0], node.output[1]
    nodes = [
        helper.make_node("GatherBlockQuantized", [f"{p}_words4", ids, f"{p}_words4_scale",
                                                  f"{p}_words4_zero"], [f"{p}_w"],
                         name=f"{p}_words", domain="com.microsoft", bits=4, block_size=block,
                         gather_axis=0, quantize_axis=1),
        # positions 0..S-1, as the fused op takes them (BERT's absolute positions)
        helper.make_node("Shape", [ids], [f"{p}_shape"], name=f"{p}_shape", start=1, end=2),
        helper.make_node("Squeeze", [f"{p}_shape"], [f"{p}_len"], name=f"{p}_len"),
        helper.make_node("Range", [f"{p}_zero_i", f"{p}_len", f"{p}_one_i"], [f"{p}_positions"],
                         name=f"{p}_positions"),
        helper.make_node("Gather", [pos, f"{p}_positions"], [f"{p}_p8"], name=f"{p}_pos"),
        helper.make_node("DequantizeLinear", [f"{p}_p8", scales[1], zeros[1]], [f"{p}_p"],
                         name=f"{p}_pos_dq"),
        helper.make_node("Gather", [typ, types], [f"{p}_t8"], name=f"{p}_type"),
        helper.make_node("DequantizeLinear", [f"{p}_t8", scales[2], zeros[2]], [f"{p}_t"],
                         name=f"{p}_type_dq"),
        helper.make_node("Add", [f"{p}_w", f"{p}_p"], [f"{p}_wp"], name=f"{p}_add_pos"),
        helper.make_node("Add", [f"{p}_wp", f"{p}_t"], [f"{p}_sum"], name=f"{p}_add_type"),
        helper.make_node("LayerNormalization", [f"{p}_sum", f"{p}_gamma", f"{p}_beta"], [out],
                         name=f"{p}_ln", axis=-1, epsilon=eps),
    ]
    if mask_index:  # the attention ops' mask: tokens per sequence (right padding)
        nodes.append(helper.make_node("ReduceSum", [mask, f"{p}_axis1"], [mask_index],
                                      name=f"{p}_mask_index", keepdims=0))
    at = list(graph.node).index(node)
    kept = [n for n in graph.node if n is not node]
    del graph.node[:]
    graph.node.extend(kept[:at] + nodes + kept[at:])
    dropped = {word, gamma, beta, scales[0], zeros[0], scales[3], zeros[3], scales[4], zeros[4]}
    still_read = {i for n in graph.node for i in n.input}
    for name in dropped - still_read:
        graph.initializer.remove(inits[name])
    graph.initializer.extend(new)
    onnx.save(model, str(dst))
    return Embed4(rows=table.shape[0], hidden=table.shape[1], block_size=block,
                  bytes_before=words8.nbytes,
                  bytes_after=packed.nbytes + scale.nbytes + zero.nbytes,
                  max_abs_error=float(np.max(np.abs(approx - table))) / step8)
