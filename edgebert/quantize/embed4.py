"""4-, 2- and 1-bit word embeddings: the biggest tensor of a small INT8 model, made smaller.

After dynamic INT8, a 3-layer student's word table (vocabulary x hidden, one byte each) is
most of the file: 5.2 of the 7.4 MB of the default recipe's Rotten Tomatoes artifact; after
static INT8 for arm64, whose guard keeps the fused embedding in FP32, it is 20.9 of 26.2 MB.
It is read one row per token, never multiplied, so it can be stored coarser than the
weights of a MatMul: 4 bits per value with a scale and zero point per block of up to 64
values of a row (ONNX Runtime's GatherBlockQuantized, com.microsoft, which unpacks only
the rows asked for). The rest of the fused embedding (position and token-type tables,
LayerNorm) keeps its precision, so the rewrite is:

    (Q)EmbedLayerNormalization(ids, types, mask)  ->
        LayerNormalization(GatherBlockQuantized(words4, ids)
                           + Gather(positions, 0..S-1) + Gather(types, types))
        (the 4-bit rows come out as fp16, their scales' type, and are cast to fp32;
        the 8-bit rows dequantized after the Gather), and its mask index,
        ReduceSum(mask) per sequence, as the attention ops read it

At 2 bits a value the table is product-quantized: each row is cut into sub-vectors of 4
values, and each sub-vector is stored as one byte, the index of its nearest entry in that
position's codebook of 256 (fp16, learnt by k-means over the table's rows). Reading it is
plain ONNX (Gather the codes, offset them into the codebooks, Gather the entries, reshape):
a quarter of a byte a value, a quarter of the 8-bit table. Its row error is larger (on
Rotten Tomatoes' 22,682-piece table, 0.31 of a row's norm against 4 bits' 0.09), but a
word's row only has to stay where the model can tell it apart. Measured on INT8 x86
models (the benchmark store's embed4 rows, `2-bit blocks64 pq/*`, dev / test): sms-spam 4.76 -> 3.60 MB at F1 98.25
/ 94.57 (4 bits: 98.25 / 93.85); Rotten Tomatoes 6.92 -> 4.60 MB at 81.14 / 79.92 %
(4 bits: 81.77 / 79.92; one dev text is 0.08 points).

At 1 bit a value the sub-vectors are 8 values long: half the 2-bit codes, and a row error of
0.56 of a row's norm, which alone cost Rotten Tomatoes' INT8 model 1.68 dev points; from a
PyTorch model the codebooks are then trained to keep the model's outputs (codebooks.py),
which won that back (dev 82.49-82.65 %, test 81.89-81.97 % in three runs, against the
2-bit table's 82.65 / 81.02 %; 3.5 MB instead of 4.6). The stage tries the bits of its
ladder (1, 2, 4; or 2, 4) and keeps the first within budget.

The low-bit table is built from the table the graph holds (FP32, or INT8 dequantized: that
rounding is a small fraction of a 4-bit step). What the 4 bits cost is for the accuracy guard
to judge, as for any lossy step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert.errors import UserError

BLOCK_SIZE = 64
"""Values per scale in a table row: 384 / 64 = 6 scales (fp16) and zero points (4-bit) per
row, 0.04 extra bytes per value. ORT allows powers of two from 16. Measured on two INT8
artifacts (dev / test accuracy, points against the 8-bit table; `edgebert evaluate`):
Rotten Tomatoes block 32 -0.24 / 0.00, block 64 +0.24 / -0.08; trec-50 block 32 -0.93 /
-0.37, block 64 -0.74 / +0.37: noise-level either way (one dev example is 0.08 and 0.19
points), so the smaller file."""


SUBVECTOR = 4
"""Values per product-quantization code (one byte): 2 bits a value (8: 1 bit)."""
CODEBOOK = 256
"""Entries per codebook: one byte a code."""


@dataclass
class Embed4:
    rows: int
    hidden: int
    block_size: int
    """Values per scale (4 bits) or per code (2 bits: the sub-vector)."""
    bytes_before: int
    bytes_after: int
    max_abs_error: float
    """Largest |4-bit value - table value|, in steps of a symmetric 8-bit table (max|x|/127)."""

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
    pair in the low nibble, fp16 scales [V, H/block], packed zero points [V, H/block/2],
    the dequantized table). Each block's clipped min and max map to 0 and 15. Scales are
    fp16: half the bytes of fp32 (0.07 of the 4-bit table's MB at block 64), and their
    rounding (2^-11 relative) is under 1/1000 of a 4-bit step."""
    rows, hidden = table.shape
    blocks = table.reshape(rows, hidden // block, block).astype(np.float32)
    lo = np.minimum(blocks.min(-1), 0.0)  # 0 stays exact (a zero row: padding)
    hi = np.maximum(blocks.max(-1), 0.0)
    best = None
    for shrink in SHRINKS:  # per block, the clipping range with the least squared error
        scale = ((hi - lo) * shrink / 15.0).astype(np.float16).astype(np.float32)
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
    return ((q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8), scale.astype(np.float16),
            (zero[:, 0::2] | (zero[:, 1::2] << 4)).astype(np.uint8), dequantized)


def product_quantize(table: np.ndarray, weights: np.ndarray | None = None, seed: int = 0,
                     sub: int = SUBVECTOR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes uint8 [V, H/sub], fp16 codebooks [H/sub, K, sub], the dequantized table): per
    position of a sub-vector, k-means (K = 256, or V when smaller) over the rows' values
    there, each row weighted by `weights` (the stage: the square root of 1 + the piece's uses
    in the training texts, so common words get the closer entries)."""
    from sklearn.cluster import KMeans

    rows, hidden = table.shape
    if hidden % sub:
        raise UserError(f"{8 // sub}-bit embeddings: a row of {hidden} values does not split "
                        f"into sub-vectors of {sub}")
    k = min(CODEBOOK, rows)
    parts = hidden // sub
    codes = np.zeros((rows, parts), np.uint8)
    books = np.zeros((parts, k, sub), np.float16)
    for m in range(parts):
        x = table[:, m * sub:(m + 1) * sub].astype(np.float32)
        fit = KMeans(k, n_init=1, max_iter=60, random_state=seed).fit(x, sample_weight=weights)
        codes[:, m] = fit.labels_
        books[m] = fit.cluster_centers_.astype(np.float16)
    return codes, books, decoded(codes, books)


def decoded(codes: np.ndarray, books: np.ndarray) -> np.ndarray:
    """The table (FP32 [V, parts * sub]) that `codes` [V, parts] read from `books`
    [parts, K, sub]: what the graph's lookup gives."""
    parts = books.shape[0]
    return books.astype(np.float32)[np.arange(parts)[None, :], codes].reshape(len(codes), -1)


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
                    weights: np.ndarray | None = None, tune=None) -> Embed4:
    """Rewrite the fused embedding of an INT8 graph (see the module doc) with its word table
    at `bits` (4: blocks of `block`; 2 or 1: product-quantized, rows weighted by `weights`,
    the codebooks then trained by `tune(codes, books) -> (books, record)` when given): ORT's
    QEmbedLayerNormalization (dynamic) or an EmbedLayerNormalization left in FP32 or fed by
    dequantized tables (static QDQ)."""
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
    tuning = None
    if bits <= 2:  # product-quantized: one byte per sub-vector of 8 // bits values
        new_words, word_nodes, made_bytes, approx, block, tuning = _pq_words(
            table, ids, f"{p}_w", p, weights, 8 // bits, tune)
    else:
        new_words, word_nodes, made_bytes, approx, block = _4bit_words(table, ids, f"{p}_w", p,
                                                                       block)
    new += new_words
    nodes += word_nodes
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
    return Embed4(rows=table.shape[0], hidden=table.shape[1], block_size=block,
                  bytes_before=stored, bytes_after=made_bytes, bits=bits,
                  max_abs_error=float(np.max(np.abs(approx - table))) / step, tuning=tuning)


def _4bit_words(table: np.ndarray, ids: str, out: str, p: str, block: int | None):
    """(initializers, nodes, bytes, dequantized table, block) of the 4-bit word lookup."""
    from onnx import TensorProto, helper, numpy_helper

    block = block or block_for(table.shape[1])
    packed, scale, zero, approx = quantize_rows(table, block)
    inits = [numpy_helper.from_array(packed, f"{p}_words4"),
             numpy_helper.from_array(scale, f"{p}_words4_scale"),
             numpy_helper.from_array(zero, f"{p}_words4_zero")]
    nodes = [helper.make_node(
        "GatherBlockQuantized", [f"{p}_words4", ids, f"{p}_words4_scale", f"{p}_words4_zero"],
        [f"{p}_w16"], name=f"{p}_words", domain="com.microsoft", bits=4, block_size=block,
        gather_axis=0, quantize_axis=1),
        # the gathered rows come out in the scales' type
        helper.make_node("Cast", [f"{p}_w16"], [out], name=f"{p}_words_fp32",
                         to=TensorProto.FLOAT)]
    return inits, nodes, packed.nbytes + scale.nbytes + zero.nbytes, approx, block


def _pq_words(table: np.ndarray, ids: str, out: str, p: str, weights: np.ndarray | None,
              sub: int = SUBVECTOR, tune=None):
    """(initializers, nodes, bytes, dequantized table, sub-vector, tuning record or None) of
    the product-quantized word lookup: codes[ids] + each position's offset -> codebook
    entries -> [..., hidden]."""
    from onnx import TensorProto, helper, numpy_helper

    if weights is not None and len(weights) != len(table):  # a padded vocabulary: ones
        w = np.ones(len(table))
        w[:min(len(w), len(weights))] = weights[:len(w)]
        weights = w
    codes, books, approx = product_quantize(table, weights, sub=sub)
    parts, k, sub = books.shape
    tuning = None
    if tune is not None:
        tuned, tuning = tune(codes, books)
        books = tuned.astype(np.float16)
        approx = decoded(codes, books)
    inits = [numpy_helper.from_array(codes, f"{p}_words2_codes"),
             numpy_helper.from_array(books.reshape(parts * k, sub), f"{p}_words2_books"),
             numpy_helper.from_array(np.arange(parts, dtype=np.int64) * k, f"{p}_words2_at"),
             numpy_helper.from_array(np.array([table.shape[1]], np.int64), f"{p}_hidden")]
    n = f"{p}_words2"
    nodes = [helper.make_node("Gather", [f"{p}_words2_codes", ids], [f"{n}_c"], name=f"{n}_codes"),
             helper.make_node("Cast", [f"{n}_c"], [f"{n}_c64"], name=f"{n}_cast",
                              to=TensorProto.INT64),
             helper.make_node("Add", [f"{n}_c64", f"{p}_words2_at"], [f"{n}_i"], name=f"{n}_at"),
             helper.make_node("Gather", [f"{p}_words2_books", f"{n}_i"], [f"{n}_v"],
                              name=f"{n}_entries"),
             helper.make_node("Cast", [f"{n}_v"], [f"{n}_v32"], name=f"{n}_fp32",
                              to=TensorProto.FLOAT),
             helper.make_node("Shape", [ids], [f"{n}_ids_shape"], name=f"{n}_ids_shape"),
             helper.make_node("Concat", [f"{n}_ids_shape", f"{p}_hidden"], [f"{n}_shape"],
                              name=f"{n}_shape", axis=0),
             helper.make_node("Reshape", [f"{n}_v32", f"{n}_shape"], [out], name=f"{n}_rows")]
    return inits, nodes, codes.nbytes + books.nbytes, approx, sub, tuning
