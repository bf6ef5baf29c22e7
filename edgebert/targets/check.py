"""Compare an ONNX artifact's outputs on aarch64 (emulated) with x86, on dev examples."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from edgebert.data.encode import pad_batch
from edgebert.formats import session
from edgebert.predict import INPUTS
from edgebert.targets.arm64 import run_onnx


def arm64_parity(model: Path, opened, examples: int = 64, batch: int = 16,
                 fp32: Path | None = None) -> dict:
    """Same argmax, and max |delta| within a few quantisation steps (not bit-exactness:
    x86 without VNNI saturates u8s8 differently).

    With `fp32` (the FP32 parent) also each one's top-1 agreement with FP32, so a
    disagreement can be blamed on the side that agrees with FP32 less often."""
    feats = opened.encode("dev").features
    picked = random.Random(0).sample(feats, min(examples, len(feats)))
    batches = [pad_batch(picked[i:i + batch], opened.tokenizer.pad_token_id, INPUTS)
               for i in range(0, len(picked), batch)]
    arm = run_onnx(model, batches)
    sess = session(model, exact_int8=True)  # x86 without saturation: comparable to ARM
    wanted = {i.name for i in sess.get_inputs()}
    ref = session(fp32) if fp32 else None
    diffs, agree, total, arm_fp32, x86_fp32 = [], 0, 0, 0, 0
    for b, feeds in enumerate(batches):
        x86 = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
        full = ref.run(None, {k: v for k, v in feeds.items() if k in wanted}) if ref else x86
        mask = feeds["attention_mask"].astype(bool)
        for a, x, f in zip(arm["outputs"][b], x86, full):
            diffs.append(float(np.abs(a - x).max()))
            pa, px, pf = a.argmax(-1), x.argmax(-1), f.argmax(-1)
            # a tag per token (NER): padding positions are no predictions
            real = mask if pa.shape == mask.shape else np.ones(pa.shape, bool)
            agree += int(np.sum((pa == px)[real]))
            total += int(real.sum())
            arm_fp32 += int(np.sum((pa == pf)[real]))
            x86_fp32 += int(np.sum((px == pf)[real]))
    out = {"machine": arm["machine"], "onnxruntime": arm["onnxruntime"],
           "examples": len(picked), "max_abs_diff": max(diffs),
           "predictions": total, "top1_agreement": agree / max(total, 1)}
    if ref:
        out |= {"arm64_top1_vs_fp32": arm_fp32 / max(total, 1),
                "x86_top1_vs_fp32": x86_fp32 / max(total, 1)}
    return out
