"""The CPU this runs on: its model and the instruction-set flags that decide which runtime
and precision are fast on it (INT8 dot products, bf16). Torch-free, standard library only."""

from __future__ import annotations

import platform

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16",
         "asimddp", "i8mm", "bf16")
"""The flags that matter here: x86 INT8 (VNNI, AMX-INT8) and bf16 (AVX512-BF16, AMX-BF16);
ARM's dot product (asimddp), int8 matrix multiply (i8mm) and bf16."""

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""x86 flags with native bf16 arithmetic: OpenVINO runs bf16 there by default."""


def cpu_flags() -> dict:
    """{"cpu": model name, "machine": x86_64 / aarch64, "flags": the FLAGS it has}, read
    from /proc/cpuinfo on Linux (elsewhere the flags are empty)."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith(("flags", "Features")):
                flags |= set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "machine": platform.machine(),
            "flags": sorted(f for f in flags if f in FLAGS)}


def is_arm(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in ("aarch64", "arm64")


def best_float(flags: list[str] | set[str] | None = None) -> str:
    """The fastest float precision that keeps a model's accuracy on a CPU with `flags`
    (default: this one): bf16 where AMX-BF16 or AVX512-BF16 runs it natively, fp32 elsewhere.
    On a Xeon with AMX the MiniLM teacher ran 3.0x faster in OpenVINO bf16 than fp32, at
    the same test accuracy.

    >>> best_float(["avx2", "amx_bf16"]), best_float(["avx2", "avx512_vnni"])
    ('bf16', 'fp32')
    """
    have = set(cpu_flags()["flags"] if flags is None else flags)
    return "bf16" if have & BF16_FLAGS else "fp32"
