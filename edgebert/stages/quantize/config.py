"""The quantize stage's config: `edgebert quantize`'s options and a recipe's `quantize`
entries derive from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from edgebert.config import check, check_choices

QuantMode = Literal["dynamic", "static"]
Calibration = Literal["minmax", "entropy", "percentile"]
Engine = Literal["ort", "inc"]


@dataclass
class QuantizeConfig:
    """INT8 with ONNX Runtime for one target, guarded against accuracy loss."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
INT8 for one target (ONNX Runtime or OpenVINO), kept within an accuracy budget.

\b
Targets (what each changes, and why):
  x86-avx2  7-bit weights (reduce_range): u8s8 VPMADDUBSW saturates int16 sums without VNNI
  x86-vnni  full 8-bit weights: VNNI/AMX accumulate u8s8 in int32
  arm64     full 8-bit weights; with --mode static, symmetric s8 activations (S8S8)
            for ARM's SDOT (the default recipe quantizes arm64 dynamically: it kept
            its FP32 accuracy on three tasks where static lost up to 1.7 points)
  openvino-int8  NNCF's static INT8 run by OpenVINO (model.xml), which picks AMX, VNNI
            or AVX2 kernels where it runs; float parts in the CPU's best precision
The guard compares INT8 with FP32 ONNX on the dev split; past --max-drop it
leaves the most sensitive nodes in FP32 and records which. A dynamic INT8
model is scored one text at a time (its scales are picked per batch), and
its position table is cut to the model's max_length (outputs checked
bit-equal; longer inputs are then refused).
--engine inc instead tunes an INT8 PyTorch program (model.pt2) with Intel
Neural Compressor against the same dev metric and budget (x86; measured
slower than FP32 on a CPU without VNNI, so not the default).

\b
Examples:
  edgebert quantize --model runs/rt/student --target x86-vnni --out runs/rt/int8/x86-vnni
  edgebert quantize --model runs/rt/student --target arm64 --mode static \\
      --calibration entropy --max-drop 1.0 --out runs/rt/int8/arm64
  edgebert quantize --model runs/rt/pruned --target openvino-int8 --out runs/rt/int8/ov
  edgebert quantize --model runs/rt/student --engine inc --target x86-avx2 \\
      --out runs/rt/int8/inc
"""

    model: str = "runs/student"
    """Model artifact: a transformers directory, or an ONNX export of one."""
    out: str = "runs/int8"
    """Artifact directory to write."""
    target: str = "x86-vnni"
    """x86-avx2 (reduce_range), x86-vnni, arm64 (S8S8 when static), or openvino-int8 (NNCF);
    see `edgebert quantize --help`."""
    mode: QuantMode = "dynamic"
    """dynamic (INT8 weights, activations quantized at run time) or static (QDQ, calibrated)."""
    calibration: Calibration = "minmax"
    """Static mode: minmax, entropy or percentile."""
    calibration_examples: int = 256
    """Static mode: training examples used to calibrate activation ranges."""
    max_drop: float = 1.0
    """Accuracy budget: largest drop of the dev metric (in points) against FP32 ONNX."""
    fuse: bool = True
    """Apply ONNX Runtime's BERT fusions (Attention, SkipLayerNorm, BiasGelu) first."""
    embedding_bits: int = 8
    """Bits per value of the word-embedding table, most of a small INT8 model's file: 8; 4
    (a scale and zero point per 64 values of a row, ORT's GatherBlockQuantized: half the
    8-bit table); 2 (product quantization: a byte per 4 values, indexing k-means
    codebooks; a quarter), falling back to 4 where 2 takes the model past --max-drop; or 1
    (a byte per 8 values, an eighth; from a PyTorch model its codebooks are then trained to
    keep the model's outputs, a few minutes), falling back to 2, then 4. --engine ort; the
    table stays at 8 bits (or FP32) where none fits the budget (metrics.json's
    embedding_lowbit says what was tried and kept). --target openvino-int8 takes 8 or 4
    (NNCF's INT4 weight compression of the table, a scale and zero point per 64 values of
    a row, or per the largest power of two that divides a narrower row)."""
    embedding_max_drop: float | None = None
    """The most dev points the word-table step may cost by itself (against the model with
    the table as it was): a try that costs more goes on to the next bits of the ladder,
    even where the model stays within --max-drop. A table that costs dev points costs more
    on test where dev is small (vader-amazon, 369 dev snippets: the 1-bit table cost
    0.52-0.98 dev points and 0.90-1.39 test points in two runs, 2 bits 0.17 dev and nothing
    on test; the benchmark store's heads rows). None: --max-drop alone."""
    engine: Engine = "ort"
    """ort (ONNX Runtime + our per-node guard: INT8 ONNX) or inc (Intel Neural Compressor's
    accuracy-driven tuning: INT8 PyTorch, model.pt2, x86 only; slower than ONNX Runtime's
    INT8 on the CPUs measured: the benchmark store's int8_inc rows)."""
    same_graph_as: str | None = None
    """A finished INT8 artifact of the same model, made with these options for another
    target whose ONNX Runtime settings give the same graph (dynamic INT8 for x86-vnni and
    arm64): its graph and scores are taken, and only this target's own check runs (arm64:
    aarch64 under emulation). compress passes it; it saves a second guard and word-table
    search."""

    def __post_init__(self):
        check_choices(self)
        check(self.calibration_examples > 0, "--calibration-examples", "must be > 0")
        check(self.max_drop >= 0, "--max-drop", f"must be >= 0, got {self.max_drop}")
        check(self.embedding_max_drop is None or self.embedding_max_drop >= 0,
              "--embedding-max-drop", f"must be >= 0, got {self.embedding_max_drop}")
        check(self.embedding_bits in (1, 2, 4, 8), "--embedding-bits",
              f"must be 8, 4, 2 or 1, got {self.embedding_bits}")
        check(self.embedding_bits == 8 or self.engine == "ort", "--embedding-bits",
              f"{self.embedding_bits} needs --engine ort (it rewrites ONNX Runtime's fused "
              f"embedding)")
