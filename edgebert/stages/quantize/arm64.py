"""The arm64 target's check: the INT8 graph run under aarch64 emulation beside x86."""

from __future__ import annotations

from pathlib import Path


def arm64_check(model: Path, fp32: Path, opened, log) -> dict:
    """Parity under aarch64 emulation when the environment is built, else why not.

    An AVX2 CPU without VNNI saturates the u8s8 products of an S8S8 model where
    ARM's SDOT does not, so the x86 side runs ORT's exact U8U8 path
    (`session.x64quantprecision`). Argmax flips left over fail the stage only when
    aarch64 is the less faithful one (agrees with the FP32 parent less often) by more
    than `ARM64_FLIP_SLACK` of the predictions, and more than one
    (`edgebert.targets.check.refuse_drift`)."""
    from edgebert.targets.arm64 import unavailable

    why = unavailable()
    if why:
        log(f"arm64: not checked under emulation ({why})")
        return {"checked": False, "reason": why}
    from edgebert.targets.check import arm64_parity, refuse_drift

    res = arm64_parity(model, opened, fp32=fp32)
    refuse_drift(res, "arm64 artifact")
    log(f"arm64: emulated aarch64 ORT {res['onnxruntime']} vs x86: max |delta| "
        f"{res['max_abs_diff']:.2e}, top-1 {res['top1_agreement']:.2%} of {res['predictions']} "
        f"predictions; top-1 vs FP32 aarch64 {res['arm64_top1_vs_fp32']:.2%}, x86 "
        f"{res['x86_top1_vs_fp32']:.2%}")
    return {"checked": True} | res
