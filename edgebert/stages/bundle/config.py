"""The bundle stage's config: `edgebert bundle`'s options."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BundleConfig:
    """Write a deployment bundle that `edgebert.runtime` loads without torch."""

    model: str
    """Artifact to ship: INT8 or FP32 ONNX, ORT format, or a PyTorch directory (exported to
    FP32 ONNX on the way)."""
    out: str
    """Bundle directory to write (must not exist)."""
