"""The tables of an ExecuTorch program: the word table of an INT8 one at 2, 4 or 8 bits a
value, and the position table cut to the positions the program can read.

XNNPACK does not take embedding lookups, so PT2E leaves the word table in FP32: for a
MiniLM-sized vocabulary most of the file (30,522 x 384 x 4 bytes = 47 MB). ExecuTorch's
quantized kernels look rows up in a packed table (`quantized_decomposed::embedding_2bit`,
`embedding_4bit`, `embedding_byte`): values quantized per group of GROUP with a scale and
a zero point each, dequantized as they are read. The table is swapped into the PyTorch
model before capture, so the guard scores, and the program runs, the same lookup.
"""

from __future__ import annotations

import copy

LADDERS = {2: (2, 4, 8), 4: (4, 8), 8: (8,), 32: ()}
"""Bits a value the word table tries, in order, for each --embedding-bits: the first
within the budget is kept (32: the table stays FP32)."""
CLIPS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)
"""Fractions of a group's range tried as its quantization range: at 2 bits (4 levels) the
extremes of min-max quantization leave most values between two levels; clipping them
halves the table's squared error on a MiniLM word table."""
GROUP = 128
"""Values per scale and zero point (fp32 each): at 32 a group, a 2-bit row of a
384-wide table would spend as many bytes on its scales as on its values."""


def register_ops() -> None:
    """The quantized_decomposed embedding ops, for torch.export and for eager scoring."""
    import executorch.exir.passes._quant_patterns_and_replacements  # noqa: F401


def group_of(width: int, bits: int) -> int | None:
    """Values per scale for a row of `width` at `bits`: the largest divisor of the width up
    to GROUP (TinyBERT's 312: 104) that fills whole bytes; None where the row itself does
    not pack into whole bytes (a width not a multiple of 4 at 2 bits)."""
    per_byte = 8 // bits
    if width % per_byte:
        return None
    return max(g for g in range(per_byte, min(GROUP, width) + 1, per_byte) if width % g == 0)


def quantized_table(weight, bits: int):
    """A module that looks ids up in `weight` [rows, width] quantized to `bits` (2, 4, 8)
    per group of `group_of(width, bits)` values."""
    import torch

    register_ops()
    rows, width = weight.shape
    group = group_of(width, bits)
    if group is None:
        raise ValueError(f"a {width}-wide row does not pack into bytes at {bits} bits")
    qmin, qmax = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    w = weight.detach().float().view(rows, width // group, group)
    lo, hi = w.amin(-1).clamp(max=0), w.amax(-1).clamp(min=0)  # zero stays exact
    best = None
    for clip in CLIPS:  # each group's range clipped where that leaves less squared error
        scale = ((hi - lo) * clip / (qmax - qmin)).clamp(min=1e-12)
        zero = torch.round(qmin - lo * clip / scale).clamp(qmin, qmax)
        q = torch.clamp(torch.round(w / scale[..., None] + zero[..., None]), qmin, qmax)
        err = ((q - zero[..., None]) * scale[..., None] - w).square().sum(-1)
        if best is None:
            best = [err, scale, zero, q]
        else:
            better = err < best[0]
            best = [torch.where(better, err, best[0]), torch.where(better, scale, best[1]),
                    torch.where(better, zero, best[2]), torch.where(better[..., None], q, best[3])]
    _, scale, zero, q = best
    q = q.to(torch.int8).view(rows, width)
    op = {2: torch.ops.quantized_decomposed.embedding_2bit.dtype,
          4: torch.ops.quantized_decomposed.embedding_4bit.dtype,
          8: torch.ops.quantized_decomposed.embedding_byte.dtype}[bits]

    class Table(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("packed", pack(q, bits))
            self.register_buffer("scales", scale.contiguous())
            self.register_buffer("zeros", zero.contiguous())

        def forward(self, ids):
            return op(self.packed, self.scales, self.zeros, qmin, qmax, ids,
                      dtype=torch.float32)

    return Table()


def pack(q, bits: int):
    """int8 values in [-2**(bits-1), 2**(bits-1)) as ExecuTorch's kernels read them: 8 bits
    as they are; 4 bits two a byte, the even column high; 2 bits four a byte, the first
    column low (each shifted to unsigned)."""
    import torch

    if bits == 8:
        return q
    rows, width = q.shape
    u = (q + 2 ** (bits - 1)).to(torch.uint8).view(rows, width * bits // 8, 8 // bits)
    if bits == 4:
        return (u[..., 0] << 4) | u[..., 1]
    return u[..., 0] | (u[..., 1] << 2) | (u[..., 2] << 4) | (u[..., 3] << 6)


def with_table(model, bits: int):
    """A copy of `model` whose word table (`get_input_embeddings`) is `bits` a value."""
    tabled = copy.deepcopy(model)
    tabled.set_input_embeddings(quantized_table(model.get_input_embeddings().weight, bits))
    return tabled


def table_mb(model, bits: int | None) -> float:
    """The word table's bytes in the program, in MB: values, scales and zero points."""
    rows, width = model.get_input_embeddings().weight.shape
    if bits is None:
        return rows * width * 4 / 1e6
    return rows * (width * bits / 8 + width // group_of(width, bits) * 8) / 1e6


POSITION_OFFSET = 2
"""Position rows kept past max_length: RoBERTa-style position ids start at padding_idx + 1
(the quantize stage's position cut keeps the same)."""


def cut_positions(model, max_length: int):
    """`model` with its position table cut to max_length + POSITION_OFFSET rows, where it
    holds more: the program is planned for at most max_length tokens and never reads the
    rest (0.59 MB of a 384-wide FP32 table of 512 rows). Models without one are left."""
    import torch

    embeddings = getattr(model.base_model, "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    keep = max_length + POSITION_OFFSET
    if not isinstance(table, torch.nn.Embedding) or table.num_embeddings <= keep:
        return model
    cut = copy.deepcopy(model)
    cut.base_model.embeddings.position_embeddings = torch.nn.Embedding.from_pretrained(
        table.weight.detach()[:keep].clone(), freeze=True, padding_idx=table.padding_idx)
    return cut
