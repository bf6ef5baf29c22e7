"""What every INT8 path (ONNX Runtime, Neural Compressor, OpenVINO) measures and records:
the INT8 model scored on dev and test beside its float parent, and the stage record."""

from __future__ import annotations

from pathlib import Path

from edgebert import artifact
from edgebert.config import to_dict
from edgebert.cpu import cpu_flags
from edgebert.metrics import points, reference
from edgebert.parity import agreement_text, compare
from edgebert.stages.quantize.config import QuantizeConfig


def int8_metrics(opened, fwd, dev, dev_out: list, parent: dict, parent_dev_out: list,
                 drop: float) -> dict:
    """The metrics an INT8 artifact records: its dev (from `dev_out`, `fwd`'s outputs on
    `dev`) and test scores; its float parent's (`parent`: {"dev": scores, "test": scores}),
    under "fp32" whatever float it runs in; the points it loses (dev: `drop`, the figure
    its guard kept it by); parity with the parent's dev outputs; and its parameters."""
    metric = opened.task.metric
    test = opened.score(fwd, "test")
    return {"dev": opened.score(fwd, "dev", dev, dev_out), "test": test, "metric": metric,
            "fp32": {"dev": parent["dev"], "test": reference(parent["test"])},
            "delta_vs_fp32": {"dev": -drop,
                              "test": points(test, metric) - points(parent["test"], metric)},
            "parity_vs_fp32": compare(parent_dev_out, dev_out, opened.kind),
            "precision": "int8",
            "params": artifact.read_json(opened.path / "metrics.json").get("params")}


def summary(metrics: dict, what: str, parent: str, kind: str) -> str:
    """The log line of a finished INT8 artifact: "INT8 x86-vnni dynamic: test accuracy
    0.8123 (FP32 0.8150), top-1 agreement 99.10%"; the caller adds its sizes."""
    metric = metrics["metric"]
    return (f"INT8 {what}: test {metric} {metrics['test'][metric]:.4f} ({parent} "
            f"{metrics['fp32']['test'][metric]:.4f})"
            f"{agreement_text(metrics['parity_vs_fp32'], kind)}")


def finish(work: Path, cfg: QuantizeConfig, opened, metrics: dict, fmt: str,
           **record) -> Path:
    """Write the stage record (the artifact's format `fmt`; `record`: what made it) and the
    metrics, and move the finished artifact into place."""
    stage = {"stage": "quantize", "parent": cfg.model, "format": fmt, "precision": "int8",
             "target": cfg.target} | record | {"built_on": cpu_flags(),
                                                "task": opened.record["task"],
                                                "config": to_dict(cfg)}
    return artifact.finish(work, Path(cfg.out), stage, metrics)
