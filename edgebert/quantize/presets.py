"""Quantization presets per target CPU, each with the reason it differs.

From ONNX Runtime's quantization guide, what matters per CPU:
- x86 without VNNI (AVX2, AVX-512 without VNNI) multiplies u8 x s8 with
  VPMADDUBSW, whose int16 intermediate sums can saturate; 7-bit weights
  (`reduce_range`) keep every pair sum in range, at a small accuracy cost.
- x86 with VNNI (VPDPBUSD, AVX512-VNNI / AVX-VNNI, and AMX) accumulates u8 x s8
  straight into int32: no saturation, so full 8-bit weights.
- arm64 has SDOT (s8 x s8) and UDOT (u8 x u8), and u8 x s8 only from ARMv8.6
  (I8MM). Static QDQ there uses signed, symmetric activations (S8S8), the pair
  SDOT runs natively; reduce_range buys nothing. Dynamic quantization always
  produces u8 activations (DynamicQuantizeLinear), so a dynamic arm64 artifact
  differs from x86-vnni only where the static one does; the preset records that.
  The default recipe quantizes arm64 dynamically, where static lost more accuracy (its
  measurements are in recipes/default.yaml); speed on ARM is not measured here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgebert.errors import UserError


@dataclass(frozen=True)
class Preset:
    target: str
    reduce_range: bool
    """7-bit weights: avoids u8s8 int16 saturation on x86 without VNNI."""
    per_channel: bool
    """One scale per output channel of each weight: better accuracy, same speed."""
    static_activations: str
    """QUInt8 (asymmetric u8) or QInt8 (symmetric s8) activations in static QDQ."""
    why: str

    def record(self) -> dict:
        return asdict(self)


PRESETS = {p.target: p for p in [
    Preset("x86-avx2", reduce_range=True, per_channel=True, static_activations="QUInt8",
           why="AVX2 without VNNI: u8s8 via VPMADDUBSW saturates int16 sums; 7-bit weights "
               "(reduce_range) keep them in range"),
    Preset("x86-vnni", reduce_range=False, per_channel=True, static_activations="QUInt8",
           why="VNNI/AMX accumulate u8s8 in int32 without saturation: full 8-bit weights, "
               "u8 activations (the fast u8s8 kernels)"),
    Preset("arm64", reduce_range=False, per_channel=True, static_activations="QInt8",
           why="ARM dot products are s8s8 (SDOT) or u8u8 (UDOT); static QDQ uses symmetric s8 "
               "activations (S8S8); no int16 saturation, so no reduce_range"),
]}


def preset(target: str) -> Preset:
    if target not in PRESETS:
        raise UserError(f"--target: unknown target '{target}'; choose {', '.join(PRESETS)}")
    return PRESETS[target]


def cpu_flags() -> dict:
    """What this CPU offers for INT8 (read from /proc/cpuinfo on Linux)."""
    import platform

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
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
    return {"cpu": model, "machine": platform.machine(),
            "flags": sorted(f for f in flags if f in wanted)}


def native_target() -> str:
    """The preset that fits the CPU this runs on."""
    info = cpu_flags()
    if info["machine"] in ("aarch64", "arm64"):
        return "arm64"
    return "x86-vnni" if {"avx512_vnni", "avx_vnni", "amx_int8"} & set(info["flags"]) \
        else "x86-avx2"
