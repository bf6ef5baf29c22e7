"""The bundle stage's config: `edgebert bundle`'s options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class BundleConfig:
    """Write a deployment bundle that `edgebert.runtime` loads without torch."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Write a deployment bundle that `edgebert.runtime` loads without torch.

The bundle holds the model, tokenizer.json and a manifest with labels,
maximum length, target and sha256 of every file. Before it is published the
runtime itself loads it and must reproduce the artifact's dev accuracy.

\b
Example:
  edgebert bundle --model runs/default/int8/x86-avx2 --out bundles/rt
  python -c "from edgebert.runtime import load; print(load('bundles/rt').predict(['fun']))"
"""

    model: str
    """Artifact to ship: INT8 or FP32 ONNX, ORT format, or a PyTorch directory (exported to
    FP32 ONNX on the way)."""
    out: str
    """Bundle directory to write (must not exist)."""
