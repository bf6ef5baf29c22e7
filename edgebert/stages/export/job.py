"""What the export stage hands a format's writer, and what the writer hands back.

Each format that export writes names its writer in its `Format` line
(`edgebert.formats.FORMATS`, `writer="module:function"`): `write(job: Job) -> Written`
makes the model file in `job.work` and says how to run it. The stage does the rest for
every format alike: it opens the parent, checks the export against it on the dev split,
scores it and records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from edgebert.artifacts_io import Opened, load_torch
from edgebert.data.features import Encoded
from edgebert.errors import UserError
from edgebert.formats import FORMATS
from edgebert.predict import Forward
from edgebert.stages.export.config import ExportConfig


@dataclass(frozen=True)
class Job:
    """One export: its options, the parent it starts from, and where it is written."""

    cfg: ExportConfig
    opened: Opened
    """The parent artifact."""
    parent_format: str
    """What the parent holds to export from: pytorch (model.safetensors) or onnx."""
    dev: Encoded
    """The dev split, encoded."""
    parent_dev: list
    """The parent's outputs on it."""
    precision: str | None
    """OpenVINO: the float precision it runs in (the stage's `float_precision`)."""
    work: Path
    """The directory being written (`<out>.partial/`)."""
    log: object = print

    @property
    def target(self) -> Path:
        """The model file to write (its format's `file`)."""
        return self.work / FORMATS[self.cfg.format].file

    def onnx(self) -> Path:
        """`work/model.onnx`: the parent's ONNX model, or exported from its PyTorch weights."""
        from edgebert.onnx_export import export_onnx

        path = self.work / "model.onnx"
        if self.parent_format == "onnx":
            path.write_bytes((self.opened.path / "model.onnx").read_bytes())
        else:
            export_onnx(load_torch(self.opened), self.opened.kind, path, self.cfg.opset)
        return path

    def torch_model(self, refusal: str):
        """The parent's PyTorch model; `refusal` (a UserError) where it has none."""
        if self.parent_format != "pytorch":
            raise UserError(f"{self.cfg.model}: {refusal}")
        return load_torch(self.opened)


class Reference(NamedTuple):
    """What an export is compared with where that is not its parent's outputs."""

    outputs: list
    what: str
    """How the record and a refusal name the comparison."""
    tolerance: tuple[float, float] | None = None
    """(max |delta logits|, least top-1 agreement) beyond which the export is refused;
    None: the parity is recorded only (the writer held the export to its own dev score)."""


class Written(NamedTuple):
    """What a writer made."""

    forward: Forward
    """The export, run as an app runs it: checked on dev and scored."""
    record: dict | None = None
    """What it adds to metrics.json."""
    reference: Reference | None = None
    """What it is compared with on dev instead of its parent's outputs (an ExecuTorch INT8
    program: its own PT2E reference, recorded as `lowering_parity`)."""
