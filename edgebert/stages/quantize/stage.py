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
