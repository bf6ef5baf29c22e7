"""Compare an artifact's outputs on aarch64 (emulated) with x86, on dev examples: ONNX
models through ONNX Runtime, OpenVINO IR through OpenVINO, .pte programs through
ExecuTorch."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgebert.data.encode import pad_batch
from edgebert.errors import UserError
from edgebert.formats import session
from edgebert.predict import INPUTS
from edgebert.targets.arm64 import (executorch_version, openvino_unavailable, run_onnx,
                                    run_openvino, run_pte)

Run = Callable[[dict[str, np.ndarray]], list[np.ndarray]]
"""feeds -> outputs, on x86."""

ARM64_FLIP_SLACK = 0.005
"""How much less often (a fraction of dev predictions) emulated aarch64 may agree with the
FP32 parent than x86 does before an arm64 artifact is refused. A rounding difference flips
a near-tie now and then (WNUT: 1 of 1,859 tagged tokens); a kernel that computes
something else flips many. The accuracy the report gives arm64 is measured on x86, so
this slack is at most half a point of it, and never less than one prediction: on the 64
dev texts of a sentence task one near-tie is 1.6 % of them (the default chain's student
failed its arm64 step on exactly one)."""


def dev_batches(opened, examples: int, batch: int) -> tuple[int, list[dict[str, np.ndarray]]]:
    """(how many, padded batches of) `examples` dev examples, the same ones every time;
    every dev example where `examples` is 0."""
    feats = opened.encode("dev").features
    picked = random.Random(0).sample(feats, min(examples, len(feats))) if examples else feats
    return len(picked), [pad_batch(picked[i:i + batch], opened.tokenizer.pad_token_id, INPUTS)
                         for i in range(0, len(picked), batch)]


def agreement(arm_outputs: list[list[np.ndarray]], batches: list[dict[str, np.ndarray]],
              x86: Run, fp32: Run | None = None) -> dict:
    """Max |delta| and top-1 agreement of aarch64's outputs with x86's on the same batches;
    with `fp32` (the FP32 parent) also each one's top-1 agreement with FP32, so a
    disagreement can be blamed on the side that agrees with FP32 less often."""
    diffs, agree, total, arm_fp32, x86_fp32 = [], 0, 0, 0, 0
    for arm, feeds in zip(arm_outputs, batches):
        here = x86(feeds)
        full = fp32(feeds) if fp32 else here
        mask = feeds["attention_mask"].astype(bool)
        for a, x, f in zip(arm, here, full):
            diffs.append(float(np.abs(a - x).max()))
            pa, px, pf = a.argmax(-1), x.argmax(-1), f.argmax(-1)
            # a tag per token (NER): padding positions are no predictions
            real = mask if pa.shape == mask.shape else np.ones(pa.shape, bool)
            agree += int(np.sum((pa == px)[real]))
            total += int(real.sum())
            arm_fp32 += int(np.sum((pa == pf)[real]))
            x86_fp32 += int(np.sum((px == pf)[real]))
    out = {"max_abs_diff": max(diffs), "predictions": total,
           "top1_agreement": agree / max(total, 1)}
    if fp32:
        out |= {"arm64_top1_vs_fp32": arm_fp32 / max(total, 1),
                "x86_top1_vs_fp32": x86_fp32 / max(total, 1)}
    return out


def _session_run(path: Path, exact_int8: bool = False) -> Run:
    sess = session(path, exact_int8=exact_int8)
    wanted = {i.name for i in sess.get_inputs()}
    return lambda feeds: sess.run(None, {k: v for k, v in feeds.items() if k in wanted})


def arm64_parity(model: Path, opened, examples: int = 64, batch: int = 16,
                 fp32: Path | None = None) -> dict:
    """An ONNX model on emulated aarch64 ONNX Runtime against x86: the same argmax, and max
    |delta| within a few quantisation steps (not bit-exactness: x86 without VNNI saturates
    u8s8 differently, so x86 runs ORT's exact path). `fp32`: the FP32 parent's ONNX model."""
    n, batches = dev_batches(opened, examples, batch)
    arm = run_onnx(model, batches)
    return {"machine": arm["machine"], "onnxruntime": arm["onnxruntime"], "examples": n} | \
        agreement(arm["outputs"], batches, _session_run(model, exact_int8=True),
                  _session_run(fp32) if fp32 else None)


def openvino_arm64_parity(model: Path, opened, precision: str | None, examples: int = 64,
                          batch: int = 16, fp32: Run | None = None) -> dict:
    """An OpenVINO IR on emulated aarch64 OpenVINO against the same IR on this CPU, each
    compiled in `precision` where its CPU runs it (bf16 falls back to f32 on a CPU without
    bf16, as edgebert.runtime does); `fp32`: the float parent it was made from. Batches of
    `batch` padded texts run on the dynamic-shape model, on both sides alike (an app's one
    text runs on a static length bucket of the same IR, its padding masked)."""
    from edgebert.formats.openvino import open_openvino

    n, batches = dev_batches(opened, examples, batch)
    arm = run_openvino(model, batches, precision)
    x86 = open_openvino(model, record={"inference_precision": precision})
    return {"machine": arm["machine"], "openvino": arm["openvino"], "examples": n} | \
        agreement(arm["outputs"], batches, x86, fp32)


def openvino_arm64_check(model: Path, opened, precision: str | None, fp32: Path,
                         log) -> dict:
    """`openvino_arm64_parity` where the emulator and OpenVINO's aarch64 wheel are here,
    else why not; `fp32`: the float parent's ONNX model. An IR is an x86 artifact first:
    drift on aarch64 (`refuse_drift`'s rule), or a run that fails there, does not refuse
    it; it only keeps it from being an arm64 candidate ("checked": False, and why)."""
    why = openvino_unavailable()
    if why:
        log(f"openvino: not checked under arm64 emulation ({why})")
        return {"checked": False, "reason": why}
    try:
        res = openvino_arm64_parity(model, opened, precision, fp32=_session_run(fp32))
    except (UserError, subprocess.TimeoutExpired) as failed:
        log(f"openvino: not an arm64 candidate: the emulated run failed ({failed})")
        return {"checked": False, "reason": f"the emulated run failed: {failed}"}
    log(f"openvino: emulated aarch64 OpenVINO {res['openvino']} vs x86 on {res['examples']} dev "
        f"examples: max |delta| {res['max_abs_diff']:.2e}, top-1 {res['top1_agreement']:.2%} "
        f"of {res['predictions']} predictions; top-1 vs the float parent aarch64 "
        f"{res['arm64_top1_vs_fp32']:.2%}, x86 {res['x86_top1_vs_fp32']:.2%}")
    try:
        refuse_drift(res, "OpenVINO IR")
    except UserError as drift:
        log(f"openvino: not an arm64 candidate: {drift}")
        return {"checked": False, "reason": str(drift)} | res
    return {"checked": True} | res


def pte_arm64_parity(model: Path, opened, runner, examples: int = 64, batch: int = 8,
                     fp32: Run | None = None) -> dict:
    """A .pte program on emulated aarch64 ExecuTorch (its C++ runtime) against `runner`, the
    same program in ExecuTorch on this CPU (formats.executorch); `fp32`: the parent it was
    made from. `batch` at most the program's planned batch."""
    n, batches = dev_batches(opened, examples, min(batch, runner.max_batch))
    takes = INPUTS[:len(runner.inputs)]  # in the program's order; no token types: zeros
    arm = run_pte(model, [[feeds.get(k, np.zeros_like(feeds["input_ids"])) for k in takes]
                          for feeds in batches])
    return {"executorch": executorch_version(), "examples": n} | agreement(arm, batches,
                                                                           runner, fp32)


def rounding_flips(res: dict) -> tuple[int, int]:
    """(predictions on which aarch64 agrees with FP32 less often than x86, how many a
    rounding difference may account for) from a parity result.

    >>> rounding_flips({"predictions": 64, "x86_top1_vs_fp32": 1.0, "arm64_top1_vs_fp32": 63 / 64})
    (1, 1)
    >>> rounding_flips({"predictions": 1859, "x86_top1_vs_fp32": 0.99, "arm64_top1_vs_fp32": 0.98})
    (19, 9)
    """
    n = res["predictions"]
    lost = round((res["x86_top1_vs_fp32"] - res["arm64_top1_vs_fp32"]) * n)
    return lost, max(1, int(ARM64_FLIP_SLACK * n))


def refuse_drift(res: dict, what: str) -> None:
    """A UserError where aarch64 is the less faithful side (agrees with FP32 less often) by
    more than ARM64_FLIP_SLACK of the predictions, and more than one (`rounding_flips`)."""
    lost, allowed = rounding_flips(res)
    if lost > allowed:
        raise UserError(f"{what}: aarch64 and x86 disagree on "
                        f"{1 - res['top1_agreement']:.1%} of dev predictions under emulation, "
                        f"and aarch64 agrees with FP32 on {lost} fewer of {res['predictions']} "
                        f"than x86 ({res['arm64_top1_vs_fp32']:.2%} vs "
                        f"{res['x86_top1_vs_fp32']:.2%}); at most {allowed} "
                        f"({ARM64_FLIP_SLACK:.1%}, at least one) is a rounding difference")
