"""What the arm64 checks compute, without an emulator or ExecuTorch: the agreement of two
sides' outputs (per text, per token, per choice, QA's two outputs), the runner's output
file, and the packing of a word table as ExecuTorch's kernels read it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from edgebert.errors import UserError
from edgebert.stages.export.pte_table import group_of, pack
from edgebert.targets.arm64 import _read_outputs
from edgebert.targets.check import agreement, refuse_drift


def feeds(batch: int, tokens: int, padded: int = 0) -> dict[str, np.ndarray]:
    mask = np.ones((batch, tokens), np.int64)
    mask[:, tokens - padded:] = 0
    return {"input_ids": np.ones((batch, tokens), np.int64), "attention_mask": mask}


def test_agreement_counts_texts_and_real_tokens_and_blames_the_side_further_from_fp32():
    # sentences: 4 texts, one argmax flipped on aarch64
    x86 = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]], np.float32)
    arm = x86.copy()
    arm[1] = [1.0, 0.5]
    res = agreement([[arm]], [feeds(4, 5)], lambda f: [x86], lambda f: [x86])
    assert res["predictions"] == 4 and res["top1_agreement"] == 0.75
    assert res["max_abs_diff"] == pytest.approx(1.0)
    assert res["arm64_top1_vs_fp32"] == 0.75 and res["x86_top1_vs_fp32"] == 1.0
    # NER: a tag per token, padding positions are no predictions
    tags = np.zeros((2, 6, 3), np.float32)
    tags[..., 0] = 1
    flipped = tags.copy()
    flipped[0, 5] = [0, 2, 0]  # a padded position: not counted
    res = agreement([[flipped]], [feeds(2, 6, padded=2)], lambda f: [tags])
    assert res["predictions"] == 8 and res["top1_agreement"] == 1.0
    # QA: two outputs (start, end) per call, each compared
    start, end = np.eye(4, dtype=np.float32)[None], np.eye(4, dtype=np.float32)[None] * 2
    res = agreement([[start, end]], [feeds(1, 4)], lambda f: [start, end])
    assert res["max_abs_diff"] == 0.0 and res["top1_agreement"] == 1.0


def test_refuse_drift_allows_a_rounding_flip_and_refuses_more():
    near = {"predictions": 64, "top1_agreement": 63 / 64, "x86_top1_vs_fp32": 1.0,
            "arm64_top1_vs_fp32": 63 / 64}
    refuse_drift(near, "a program")  # one near-tie of 64: a rounding difference
    with pytest.raises(UserError, match="at most 1"):
        refuse_drift(near | {"arm64_top1_vs_fp32": 62 / 64, "top1_agreement": 62 / 64},
                     "a program")


def test_the_runners_output_file_reads_back():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[[1.5]]], np.float32)
    data = b""
    for outputs in ([a], [a, b]):
        data += struct.pack("<i", len(outputs))
        for o in outputs:
            data += struct.pack(f"<{o.ndim + 1}i", o.ndim, *o.shape) + o.tobytes()
    calls = _read_outputs(data)
    assert len(calls) == 2 and len(calls[1]) == 2
    assert np.array_equal(calls[0][0], a) and np.array_equal(calls[1][1], b)


@pytest.mark.parametrize("bits", [2, 4])
def test_a_word_table_packs_as_executorchs_kernels_unpack_it(bits):
    """4 bits: two values a byte, the even column in the high half; 2 bits: four a byte,
    the first column in the low bits; each shifted by 2**(bits-1) to unsigned."""
    lo, hi = -2 ** (bits - 1), 2 ** (bits - 1)
    q = torch.randint(lo, hi, (5, 16), generator=torch.Generator().manual_seed(0)).to(torch.int8)
    packed = pack(q, bits).to(torch.int32)
    per = 8 // bits
    assert packed.shape == (5, 16 // per)
    shifts = [4, 0] if bits == 4 else [0, 2, 4, 6]
    unpacked = torch.stack([(packed >> s) & (2 ** bits - 1) for s in shifts], -1).view(5, 16)
    assert torch.equal(unpacked - 2 ** (bits - 1), q.to(torch.int32))
    assert torch.equal(pack(q, 8), q)


def test_groups_divide_the_row_and_fill_bytes():
    assert group_of(384, 2) == 128 and group_of(768, 4) == 128
    assert group_of(312, 2) == 104  # TinyBERT: a divisor, not the whole row
    assert group_of(30, 2) is None and group_of(30, 8) == 30
