"""The export stage's config: `edgebert export`'s options and a recipe's `export` entries
derive from it. Its formats are those of `edgebert.formats.FORMATS` that have a writer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from edgebert.config import check, check_choices
from edgebert.formats import FORMATS

ExportFormat = Literal[tuple(f.name for f in FORMATS.values() if f.writer)]
ExportPrecision = Literal["auto", "fp32", "bf16", "int8"]


@dataclass
class ExportConfig:
    """Export a model artifact to a deployable format, checked against its parent."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Export a model artifact to ONNX, ORT format, OpenVINO IR, ExecuTorch or TorchScript,
checked for drift.

The export runs on the dev split beside its parent; above --max-abs-diff or
below --min-agreement it is refused with the numbers, and nothing is written
(an ExecuTorch INT8 program is held to --max-drop as it runs instead, and to
those two, against the quantized model its guard scored, where they are given).
OpenVINO IR runs in this CPU's fastest float precision (bf16 with AMX-BF16
or AVX512-BF16, else fp32; --precision to choose), recorded in stage.json and
checked against a bf16 tolerance; it needs `pip install 'edgebert[openvino]'`.
ExecuTorch writes model.pte delegated to XNNPACK, for phones; --precision int8
quantizes it (PT2E, static, per-channel) within --max-drop dev points; it needs
`pip install 'edgebert[executorch]'`.

\b
Examples:
  edgebert export --model runs/rt/student --format onnx --out runs/rt/onnx
  edgebert export --model runs/rt/pruned --format openvino --out runs/rt/openvino
  edgebert export --model runs/rt/pruned --format executorch --precision int8 --out runs/rt/pte
  edgebert export --model runs/rt/int8/arm64 --format ort --out runs/rt/ort/arm64
  edgebert export --model runs/rt/student --format torchscript --out runs/rt/torchscript
"""

    model: str = "runs/student"
    """Model artifact to export (a transformers directory written by a stage)."""
    out: str = "runs/onnx"
    """Artifact directory to write."""
    format: ExportFormat = "onnx"
    """onnx (dynamic batch and sequence axes), ort (ONNX Runtime Mobile), openvino (IR:
    model.xml + model.bin, run by OpenVINO), executorch (model.pte, delegated to XNNPACK:
    PyTorch's phone runtime), or torchscript."""
    precision: ExportPrecision = "auto"
    """openvino: the precision it runs in, recorded in stage.json and used wherever it
    runs. auto: bf16 on CPUs with AMX-BF16 or AVX512-BF16 (the MiniLM teacher 3x faster
    than in fp32 with AMX, same test accuracy), fp32 elsewhere; bf16 only where this CPU
    runs it (the export is checked in the precision it records). executorch: fp32 (auto),
    or int8 (PT2E static quantization for XNNPACK, per-channel weights, calibrated on
    training texts, kept within --max-drop dev points of the parent)."""
    opset: int = 17
    """ONNX opset."""
    max_abs_diff: float | None = None
    """Largest |delta logits| against the parent on dev examples before refusing [default:
    1e-3 in fp32, 0.25 in bf16 (8 bits of mantissa); none for an ExecuTorch int8 program,
    held to --max-drop instead (given, it is held to this too, against its PT2E
    reference)]."""
    min_agreement: float | None = None
    """Smallest top-1 agreement with the parent on dev examples before refusing [default:
    0.999 in fp32, 0.99 in bf16]."""
    with_tokenizer: bool = False
    """onnx / ort only: put the WordPiece tokenizer in the graph (onnxruntime-extensions)
    and a softmax and label lookup after it: strings in, labels and scores out."""
    max_drop: float = 1.0
    """--precision int8 only: the accuracy budget, the largest drop of the dev metric (in
    points) against the parent; layers that lose most stay in FP32 until it fits."""
    embedding_bits: int = 2
    """executorch --precision int8 only: bits a value of the word table (XNNPACK leaves it
    out, in FP32: most of a small model's file), read by ExecuTorch's quantized kernels.
    2 tries 2, then 4, then 8 bits and keeps the first within --max-drop; 4 tries 4, then
    8; 32 keeps FP32."""

    def __post_init__(self):
        check_choices(self)
        check(not self.with_tokenizer or self.format in ("onnx", "ort"), "--with-tokenizer",
              f"is for --format onnx or ort, not {self.format}")
        precisions = {"openvino": ("auto", "fp32", "bf16"), "executorch": ("auto", "fp32", "int8")}
        check(self.precision in precisions.get(self.format, ("auto",)), "--precision",
              "is for --format " + " or ".join(f"{f} ({', '.join(p[1:])})"
                                                for f, p in precisions.items())
              + f", not {self.precision} with --format {self.format}")
        check(self.max_drop >= 0, "--max-drop", "must be >= 0 (points)")
        check(self.embedding_bits in (2, 4, 8, 32), "--embedding-bits",
              f"must be 2, 4, 8 or 32, got {self.embedding_bits}")
        check(11 <= self.opset <= 21, "--opset", f"must be 11..21, got {self.opset}")
        check(self.max_abs_diff is None or self.max_abs_diff > 0, "--max-abs-diff",
              "must be > 0")
        check(self.min_agreement is None or 0 <= self.min_agreement <= 1, "--min-agreement",
              "is a fraction in [0, 1]")
