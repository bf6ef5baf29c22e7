"""Deployment targets, each declared once: the CPU architecture, the runtime and precision
of its artifacts, the CPU features it needs, how ONNX Runtime quantizes for it, and why.
Torch-free. (The modules beside this one check arm64 artifacts under emulation.)

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
  differs from x86-vnni only where the static one does.
OpenVINO picks its own kernels per CPU (AMX, VNNI or AVX2) from one INT8 IR that NNCF
writes, so its target names the runtime, not an instruction set.

Adding a target: one `Target` line in TARGETS (and, for a new runtime, its quantizer: a
module of the quantize stage that the line names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgebert.cpu import cpu_flags, is_arm
from edgebert.errors import UserError


@dataclass(frozen=True)
class Target:
    name: str
    arch: str
    """x86_64 or aarch64: where it runs, and so whether this machine can time it."""
    runtime: str
    """onnxruntime or openvino: what runs its artifacts."""
    quantizer: str
    """"module:function" that makes its INT8 artifact, (cfg, opened, log) -> Path: the
    quantize stage imports it when it runs (`edgebert/stages/quantize/`)."""
    why: str
    precision: str = "int8"
    needs: tuple[str, ...] = ()
    """CPU flags of which it needs one to be fast (none: any CPU of its architecture)."""
    reduce_range: bool = False
    """ONNX Runtime: 7-bit weights, avoiding u8s8 int16 saturation on x86 without VNNI."""
    per_channel: bool = True
    """ONNX Runtime: one scale per output channel of each weight: better accuracy, same
    speed."""
    static_activations: str = "QUInt8"
    """ONNX Runtime static QDQ: QUInt8 (asymmetric u8) or QInt8 (symmetric s8) activations."""

    def record(self) -> dict:
        """As stage.json keeps it ("preset"), the name under "target" (what made it is the
        stage's own business)."""
        out = asdict(self)
        del out["quantizer"]
        return {"target": out.pop("name"), **out}

    def runs_here(self, machine: str | None = None) -> bool:
        """Whether a machine (default: this one) runs it natively, so its latency can be
        measured there; elsewhere it is checked under emulation at most, never timed."""
        return is_arm(machine) == (self.arch == "aarch64")


ORT = "edgebert.stages.quantize.ort:quantize_ort"
"""ONNX Runtime's quantizer: its presets, graph fusions and the accuracy guard."""

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("x86-avx2", "x86_64", "onnxruntime", ORT, reduce_range=True, needs=("avx2",),
           why="AVX2 without VNNI: u8s8 via VPMADDUBSW saturates int16 sums; 7-bit weights "
               "(reduce_range) keep them in range"),
    Target("x86-vnni", "x86_64", "onnxruntime", ORT,
           needs=("avx512_vnni", "avx_vnni", "amx_int8"),
           why="VNNI/AMX accumulate u8s8 in int32 without saturation: full 8-bit weights, "
               "u8 activations (the fast u8s8 kernels)"),
    Target("arm64", "aarch64", "onnxruntime", ORT, static_activations="QInt8",
           needs=("asimddp",),
           why="ARM dot products are s8s8 (SDOT) or u8u8 (UDOT); static QDQ uses symmetric s8 "
               "activations (S8S8); no int16 saturation, so no reduce_range"),
    Target("openvino-int8", "x86_64", "openvino",
           "edgebert.stages.quantize.openvino:quantize_openvino", needs=("avx2",),
           why="NNCF's post-training INT8 (static, per-channel weights) run by OpenVINO, which "
               "picks AMX, VNNI or AVX2 kernels on the CPU it runs on; its float operations "
               "run in the CPU's best float precision (bf16 with AMX-BF16)"),
)}

ARCHES = {"x86_64": "x86", "aarch64": "arm64"}
"""Architectures as the report groups its recommendations."""


def same_int8_graph(a: str, b: str, mode: str) -> bool:
    """Whether ONNX Runtime's INT8 of one model is the same graph for targets `a` and `b`:
    the settings its quantizer reads agree (dynamic INT8 reads no activation type).

    >>> same_int8_graph("x86-vnni", "arm64", "dynamic"), same_int8_graph("x86-vnni", "arm64",
    ...                                                                   "static")
    (True, False)
    """
    ta, tb = target(a), target(b)
    read = ("runtime", "reduce_range", "per_channel") + (
        ("static_activations",) if mode == "static" else ())
    return ta.runtime == "onnxruntime" and all(getattr(ta, f) == getattr(tb, f) for f in read)


def target(name: str) -> Target:
    if name not in TARGETS:
        raise UserError(f"--target: unknown target '{name}'; choose {', '.join(TARGETS)}")
    return TARGETS[name]


def arch_of(name: str | None) -> str:
    """The architecture of a target name; an artifact without one ("any": an FP32 export)
    runs wherever it is benched, so it competes on this machine's architecture."""
    if name in TARGETS:
        return TARGETS[name].arch
    return "aarch64" if is_arm() else "x86_64"


def native_target() -> str:
    """The ONNX Runtime target that fits the CPU this runs on."""
    info = cpu_flags()
    if is_arm(info["machine"]):
        return "arm64"
    return "x86-vnni" if set(TARGETS["x86-vnni"].needs) & set(info["flags"]) else "x86-avx2"


__all__ = ["ARCHES", "TARGETS", "Target", "arch_of", "cpu_flags", "native_target",
           "same_int8_graph", "target"]
