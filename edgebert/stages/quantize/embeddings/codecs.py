"""The word-table codecs, one per bits a value: how the table is stored and how the graph
reads a row back.

4 bits: a scale and zero point per block of up to 64 values of a row (ONNX Runtime's
GatherBlockQuantized, com.microsoft, which unpacks only the rows asked for).

2 bits: product quantization. Each row is cut into sub-vectors of 4 values, and each
sub-vector is stored as one byte, the index of its nearest entry in that position's
codebook of 256 (fp16, learnt by k-means over the table's rows). Reading it is plain ONNX
(Gather the codes, offset them into the codebooks, Gather the entries, reshape): a quarter
of a byte a value, a quarter of the 8-bit table. Its row error is larger (on Rotten
Tomatoes' 22,682-piece table, 0.31 of a row's norm against 4 bits' 0.09), but a word's row
only has to stay where the model can tell it apart. Measured on INT8 x86 models (the
benchmark store's embed4 rows, `2-bit blocks64 pq/*`, dev / test): sms-spam 4.76 -> 3.60 MB
at F1 98.25 / 94.57 (4 bits: 98.25 / 93.85); Rotten Tomatoes 6.92 -> 4.60 MB at 81.14 /
79.92 % (4 bits: 81.77 / 79.92; one dev text is 0.08 points).

1 bit: the same with sub-vectors of 8 values: half the 2-bit codes, and a row error of 0.56
of a row's norm, which alone cost Rotten Tomatoes' INT8 model 1.68 dev points; from a
PyTorch model the codebooks are then trained to keep the model's outputs (codebooks.py),
which won that back (dev 82.49-82.65 %, test 81.89-81.97 % in three runs, against the
2-bit table's 82.65 / 81.02 %; 3.5 MB instead of 4.6).

The initializers a codec writes are named for the bits they hold, `<node>_words<bits>`:
`_words4` (packed values) with `_words4_scale` and `_words4_zero`; `_words2_codes` or
`_words1_codes` with `_books` and `_at`. Nothing reads them by name (ONNX Runtime runs the
graph as it is), so a 1-bit model from an earlier version, whose tensors were named
`_words2_`, loads and runs as it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

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


SHRINKS = tuple(np.linspace(1.0, 0.7, 7))
"""Clipping ranges tried per block (fractions of its min..max): the least squared error
wins. Against min..max on the tables above, block 64: dev +5 and +1 examples, test -4 and
+1: kept for the smaller error, not a measured gain."""


@dataclass
class Lookup:
    """A codec's word lookup: the initializers and nodes that turn ids into FP32 rows."""
    inits: list
    nodes: list
    nbytes: int
    """Bytes of the stored table (values, scales and zero points, or codes and codebooks)."""
    approx: np.ndarray
    """The table as the graph reads it back, FP32 [V, H]."""
    block: int
    """Values per scale (4 bits) or per code (product-quantized: the sub-vector)."""
    tuning: dict | None = None
    """What codebook tuning measured, where it ran (codebooks.tune_codebooks)."""


@dataclass(frozen=True)
class Codec:
    """One way to store the word table at `bits` a value."""
    bits: int
    what: str
    lookup: Callable[..., Lookup]
    """lookup(table, ids, out, prefix, block=, weights=, tune=) -> Lookup."""
    weighted: bool = False
    """Learnt by k-means: rows weighted by how often the task uses their piece."""
    tuned: bool = False
    """Its codebooks are worth training against the PyTorch model, where there is one."""


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


def blockwise_lookup(table: np.ndarray, ids: str, out: str, p: str, block: int | None = None,
                     weights=None, tune=None) -> Lookup:
    """The 4-bit word lookup: GatherBlockQuantized over blocks of `block` values (None: the
    largest ORT takes for the row, block_for), its fp16 rows cast to FP32 as `out`."""
    from onnx import TensorProto, helper, numpy_helper

    block = block or block_for(table.shape[1])
    packed, scale, zero, approx = quantize_rows(table, block)
    w = f"{p}_words4"
    inits = [numpy_helper.from_array(packed, w),
             numpy_helper.from_array(scale, f"{w}_scale"),
             numpy_helper.from_array(zero, f"{w}_zero")]
    nodes = [helper.make_node(
        "GatherBlockQuantized", [w, ids, f"{w}_scale", f"{w}_zero"],
        [f"{p}_w16"], name=f"{p}_words", domain="com.microsoft", bits=4, block_size=block,
        gather_axis=0, quantize_axis=1),
        # the gathered rows come out in the scales' type
        helper.make_node("Cast", [f"{p}_w16"], [out], name=f"{p}_words_fp32",
                         to=TensorProto.FLOAT)]
    return Lookup(inits, nodes, packed.nbytes + scale.nbytes + zero.nbytes, approx, block)


def product_lookup(table: np.ndarray, ids: str, out: str, p: str, block: int | None = None,
                   weights: np.ndarray | None = None, tune=None,
                   sub: int = SUBVECTOR) -> Lookup:
    """The product-quantized word lookup, a byte per sub-vector of `sub` values:
    codes[ids] + each position's offset -> codebook entries -> [..., hidden]. Rows weighted
    by `weights` in k-means; the codebooks then trained by `tune(codes, books) -> (books,
    record)` when given. `block` does not apply (the sub-vector is the codec's)."""
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
    n = f"{p}_words{8 // sub}"  # bits a value: a byte per `sub` values
    inits = [numpy_helper.from_array(codes, f"{n}_codes"),
             numpy_helper.from_array(books.reshape(parts * k, sub), f"{n}_books"),
             numpy_helper.from_array(np.arange(parts, dtype=np.int64) * k, f"{n}_at"),
             numpy_helper.from_array(np.array([table.shape[1]], np.int64), f"{p}_hidden")]
    nodes = [helper.make_node("Gather", [f"{n}_codes", ids], [f"{n}_c"], name=f"{n}_codes"),
             helper.make_node("Cast", [f"{n}_c"], [f"{n}_c64"], name=f"{n}_cast",
                              to=TensorProto.INT64),
             helper.make_node("Add", [f"{n}_c64", f"{n}_at"], [f"{n}_i"], name=f"{n}_at"),
             helper.make_node("Gather", [f"{n}_books", f"{n}_i"], [f"{n}_v"],
                              name=f"{n}_entries"),
             helper.make_node("Cast", [f"{n}_v"], [f"{n}_v32"], name=f"{n}_fp32",
                              to=TensorProto.FLOAT),
             helper.make_node("Shape", [ids], [f"{n}_ids_shape"], name=f"{n}_ids_shape"),
             helper.make_node("Concat", [f"{n}_ids_shape", f"{p}_hidden"], [f"{n}_shape"],
                              name=f"{n}_shape", axis=0),
             helper.make_node("Reshape", [f"{n}_v32", f"{n}_shape"], [out], name=f"{n}_rows")]
    return Lookup(inits, nodes, codes.nbytes + books.nbytes, approx, sub, tuning)


CODECS: dict[int, Codec] = {c.bits: c for c in (
    Codec(4, "4-bit blockwise (a scale and zero point per block of a row)", blockwise_lookup),
    Codec(2, "2-bit product quantization (a byte per 4 values)", partial(product_lookup, sub=4),
          weighted=True),
    Codec(1, "1-bit product quantization (a byte per 8 values)", partial(product_lookup, sub=8),
          weighted=True, tuned=True),
)}
"""The codecs by bits a value (--embedding-bits below 8)."""

