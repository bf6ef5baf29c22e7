"""Compare an ONNX artifact's outputs on aarch64 (emulated) with x86, on dev examples."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from edgebert.data.encode import pad_batch
from edgebert.export.onnx import session
from edgebert.predict import INPUTS
from edgebert.targets.arm64 import run_onnx


def arm64_parity(model: Path, opened, examples: int = 64, batch: int = 16) -> dict:
    """Same argmax, and max |delta| within a few quantisation steps (not bit-exactness:
    x86 without VNNI saturates u8s8 differently)."""
    feats = opened.encode("dev").features
    picked = random.Random(0).sample(feats, min(examples, len(feats)))
    batches = [pad_batch(picked[i:i + batch], opened.tokenizer.pad_token_id, INPUTS)
               for i in range(0, len(picked), batch)]
    arm = run_onnx(model, batches)
    sess = session(model)
    wanted = {i.name for i in sess.get_inputs()}
    diffs, agree, total = [], 0, 0
    for b, feeds in enumerate(batches):
        x86 = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
        for a, x in zip(arm["outputs"][b], x86):
            diffs.append(float(np.abs(a - x).max()))
            same = a.argmax(-1) == x.argmax(-1)
            agree += int(np.sum(same))
            total += same.size
    return {"machine": arm["machine"], "onnxruntime": arm["onnxruntime"],
            "examples": len(picked), "max_abs_diff": max(diffs),
            "top1_agreement": agree / max(total, 1)}
