"""The quantize stage: model artifact in, INT8 artifact for one target out.

    <out>/model.onnx      INT8, fused for the target's ONNX Runtime (ort.py)
                          (model.pt2 instead with --engine inc: INT8 PyTorch, inc.py;
                          model.xml / .bin for the openvino-int8 target, openvino.py:
                          each target names its quantizer, `Target.quantizer`)
    <out>/stage.json      preset (and why), CPU flags at build time, excluded nodes
    <out>/metrics.json    dev/test metrics, drop vs FP32, parity, fusion counts, sizes
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import open_artifact
from edgebert.metrics import points
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.targets import target

HELP = """INT8 for one target (ONNX Runtime or OpenVINO), kept within an accuracy budget.

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


def run(cfg: QuantizeConfig, log=print) -> Path:
    """INT8 `cfg.model` for `cfg.target`, within `cfg.max_drop` points of FP32 on dev.

    >>> # run(QuantizeConfig(model="runs/rt/student", target="x86-vnni", out="runs/int8"))
    """
    out = Path(cfg.out)
    if artifact.already_done(out, log, "quantize"):
        return out
    quantizer = target(cfg.target).quantizer  # an unknown target fails here, before any work
    opened = open_artifact(cfg.model)
    if cfg.engine == "inc":  # INT8 PyTorch, tuned by Neural Compressor, whatever the target
        from edgebert.stages.quantize.inc import quantize_inc

        return quantize_inc(cfg, opened, log)
    # ONNX Runtime's, or NNCF's for OpenVINO (static: --mode and --calibration do not apply)
    return pkgutil.resolve_name(quantizer)(cfg, opened, log)


def dev_points(model: Path) -> float:
    """A finished artifact's dev metric in points, from its metrics.json."""
    m = artifact.read_json(Path(model) / "metrics.json")
    return points(m["dev"], m["metric"])
