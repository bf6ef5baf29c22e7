"""The arm64 target's check: the INT8 graph run under aarch64 emulation beside x86."""

from __future__ import annotations

from pathlib import Path

from edgebert.errors import UserError

ARM64_FLIP_SLACK = 0.005
"""How much less often (a fraction of dev predictions) emulated aarch64 may agree with the
FP32 parent than x86 does before the arm64 stage fails. A rounding difference flips a
near-tie now and then (WNUT: 1 of 1,859 tagged tokens); a kernel that computes
something else flips many. The accuracy the report gives arm64 is measured on x86, so
this slack is at most half a point of it, and never less than one prediction: on the 64
dev texts of a sentence task one near-tie is 1.6 % of them (the default chain's student
failed its arm64 step on exactly one)."""


def rounding_flips(res: dict) -> tuple[int, int]:
    """(predictions on which aarch64 agrees with FP32 less often than x86, how many a
    rounding difference may account for) from `arm64_parity`'s result.

    >>> rounding_flips({"predictions": 64, "x86_top1_vs_fp32": 1.0, "arm64_top1_vs_fp32": 63 / 64})
    (1, 1)
    >>> rounding_flips({"predictions": 1859, "x86_top1_vs_fp32": 0.99, "arm64_top1_vs_fp32": 0.98})
    (19, 9)
    """
    n = res["predictions"]
    lost = round((res["x86_top1_vs_fp32"] - res["arm64_top1_vs_fp32"]) * n)
    return lost, max(1, int(ARM64_FLIP_SLACK * n))


def arm64_check(model: Path, fp32: Path, opened, log) -> dict:
    """Parity under aarch64 emulation when the environment is built, else why not.

    An AVX2 CPU without VNNI saturates the u8s8 products of an S8S8 model where
    ARM's SDOT does not, so the x86 side runs ORT's exact U8U8 path
    (`session.x64quantprecision`). Argmax flips left over fail the stage only when
    aarch64 is the less faithful one (agrees with the FP32 parent less often) by more
    than ARM64_FLIP_SLACK of the predictions, and more than one (`rounding_flips`)."""
    from edgebert.targets.arm64 import unavailable

    why = unavailable()
    if why:
        log(f"arm64: not checked under emulation ({why})")
        return {"checked": False, "reason": why}
    from edgebert.targets.check import arm64_parity

    res = arm64_parity(model, opened, fp32=fp32)
    lost, allowed = rounding_flips(res)
    if lost > allowed:
        raise UserError(f"arm64 artifact: aarch64 and x86 disagree on "
                        f"{1 - res['top1_agreement']:.1%} of dev predictions under emulation, "
                        f"and aarch64 agrees with FP32 on {lost} fewer of {res['predictions']} "
                        f"than x86 ({res['arm64_top1_vs_fp32']:.2%} vs "
                        f"{res['x86_top1_vs_fp32']:.2%}); at most {allowed} "
                        f"({ARM64_FLIP_SLACK:.1%}, at least one) is a rounding difference")
    log(f"arm64: emulated aarch64 ORT {res['onnxruntime']} vs x86: max |delta| "
        f"{res['max_abs_diff']:.2e}, top-1 {res['top1_agreement']:.2%} of {res['predictions']} "
        f"predictions; top-1 vs FP32 aarch64 {res['arm64_top1_vs_fp32']:.2%}, x86 "
        f"{res['x86_top1_vs_fp32']:.2%}")
    return {"checked": True} | res
