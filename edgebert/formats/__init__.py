"""Artifact formats, each declared once: its model file, the runtime that runs it, and how
to open it. Torch-free: only the standard library and numpy at import; a runtime is
imported when a model is opened.

Each format names its opener as "module:function" instead of importing it (the
entry-point pattern), so that this registry, and the runtime that stands on it, import
no format's module until a model of that format is opened: an ONNX bundle never loads
the PyTorch formats' code, and import-linter can check that statically.

Every part that looks into an artifact directory for its model asks here: the stages
(export, quantize, bundle), evaluate, bench and its worker, the report and the runtime
apps embed. Each format opens to a *runner*: `runner.inputs` (names it takes),
`runner.outputs` (names it gives) and `runner(feeds)` -> its outputs as numpy arrays, so
scoring, timing and serving never branch on the format.

Adding a format: a module here with its `open_*` function, and one `Format` line below
that names it; for `edgebert export` to write it, the line names its writer too (a module
of the export stage, `edgebert/stages/export/`).
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path

from edgebert.errors import UserError
from edgebert.formats.ort import extensions_library, session


@dataclass(frozen=True)
class Format:
    name: str
    file: str
    """The model file in an artifact directory."""
    runtime: str
    """The Python package that runs it (what a user installs): onnxruntime, openvino,
    executorch, torch."""
    opener: str
    """"module:function" that opens it: (file, threads, record, error) -> runner; `record`
    is the artifact's stage.json."""
    companions: tuple[str, ...] = ()
    """Files that travel with the model file (OpenVINO's weights)."""
    served: bool = False
    """`edgebert bundle` packs it and `edgebert.runtime` runs it (without torch where
    `torch_free`)."""
    weights: bool = False
    """The PyTorch weights every other format of a model is made from."""
    install: str = ""
    score_opener: str = ""
    """"module:function" that opens it for scoring where that differs from `opener`
    (timing): pt2 uncompiled."""
    kernels: str = ""
    """The kernels a timing of it measures, where they, not the machine, are the point
    (ExecuTorch: XNNPACK): bench results say `x86 XNNPACK`, never a phone's latency."""
    writer: str = ""
    """"module:function" with which `edgebert export` writes it: (Job) -> Written
    (`edgebert.stages.export.job`); imported only by the export stage. Empty: export does
    not write it (`--format` offers the formats that have one)."""

    @property
    def torch_free(self) -> bool:
        """Its runtime runs without torch (executorch's Python bindings link libtorch)."""
        return self.runtime not in ("torch", "executorch")

    def open(self, file: Path, threads: int | None = None, record: dict | None = None,
             error: type[Exception] = UserError, scoring: bool = False):
        """The runner of `file`, from the opener this format names (`score_opener` where
        `scoring` and it names one); its module is imported here, on first use."""
        opener = pkgutil.resolve_name((scoring and self.score_opener) or self.opener)
        return opener(file, threads, record, error)

    def files(self) -> tuple[str, ...]:
        return (self.file, *self.companions)

    def require(self, error: type[Exception] = UserError) -> None:
        """One line naming what to install, where its runtime cannot be imported (it is
        imported here, as opening the model would)."""
        import importlib

        try:
            importlib.import_module(self.runtime)
        except ImportError:
            raise error(f"{self.name} artifacts need the {self.runtime} package "
                        f"({self.install or 'pip install ' + self.runtime})") from None


FORMATS: dict[str, Format] = {f.name: f for f in (
    # PyTorch weights first: the model every other file in a directory was made from
    Format("pytorch", "model.safetensors", "torch", "edgebert.formats.torch:open_pytorch",
           weights=True, install="pip install 'edgebert[full]'"),
    Format("onnx", "model.onnx", "onnxruntime", "edgebert.formats.ort:open_ort", served=True,
           writer="edgebert.stages.export.onnx:write_onnx"),
    Format("ort", "model.ort", "onnxruntime", "edgebert.formats.ort:open_ort", served=True,
           writer="edgebert.stages.export.onnx:write_ort"),
    Format("openvino", "model.xml", "openvino", "edgebert.formats.openvino:open_openvino",
           companions=("model.bin",), served=True, install="pip install 'edgebert[openvino]'",
           writer="edgebert.stages.export.openvino:write_openvino"),
    # a phone's runtime (Kotlin, Swift); served in Python as a check, through executorch's
    # bindings (they load torch)
    Format("executorch", "model.pte", "executorch", "edgebert.formats.executorch:open_executorch",
           served=True, install="pip install 'edgebert[executorch]'", kernels="XNNPACK",
           writer="edgebert.stages.export.executorch:write_executorch"),
    Format("torchscript", "model.pt", "torch", "edgebert.formats.torch:open_torchscript",
           install="pip install 'edgebert[full]'",
           writer="edgebert.stages.export.torchscript:write_torchscript"),
    Format("pt2", "model.pt2", "torch", "edgebert.formats.torch:open_program",
           install="pip install 'edgebert[full]'",
           score_opener="edgebert.formats.torch:open_program_eager"),
)}

MODEL_FILES = tuple((f.file, f.name) for f in FORMATS.values())
"""Every model file a stage writes, and its format, in the order a directory is read."""
ORT_FILES = tuple(f.file for f in FORMATS.values() if f.runtime == "onnxruntime")
"""What ONNX Runtime runs."""
SERVED_FILES = tuple(f.file for f in FORMATS.values() if f.served)
"""What `edgebert.runtime` runs, in the order a bundle picks one."""
EXPORTS_FIRST = tuple(f.file for f in FORMATS.values() if not f.weights) + tuple(
    f.file for f in FORMATS.values() if f.weights)
"""The order that names an artifact by what it ships (a report row): the export, not the
weights it was made from."""
FORMAT = dict(MODEL_FILES)
SUFFIXES = {Path(f.file).suffix: f.name for f in FORMATS.values()}

__all__ = ["EXPORTS_FIRST", "FORMAT", "FORMATS", "Format", "MODEL_FILES", "ORT_FILES",
           "SERVED_FILES", "extensions_library", "format_named", "model_file", "open_model",
           "read_record", "require_model_file", "session"]


def format_named(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"format '{name}' is not one of {', '.join(FORMATS)}") from None


def model_file(path: str | Path, among: tuple[str, ...] | None = None
               ) -> tuple[Path, str] | None:
    """(file, format) of the model `path` runs from: the first of `among` (default: every
    name in MODEL_FILES order) that the directory holds, or `path` itself when it is a model
    file (.onnx, .ort, .xml, .pt, .pt2, .safetensors) of one of those formats; None
    otherwise."""
    path, among = Path(path), among or tuple(FORMAT)
    if path.is_file():
        fmt = SUFFIXES.get(path.suffix)
        return (path, fmt) if fmt in {FORMAT[n] for n in among} else None
    for name in among:
        if (path / name).is_file():
            return path / name, FORMAT[name]
    return None


def require_model_file(path: str | Path, among: tuple[str, ...] | None = None,
                       purpose: str = "") -> tuple[Path, str]:
    """`model_file`, or a UserError that names what was looked for (and what for)."""
    found = model_file(path, among)
    if found is None:
        names = among or tuple(FORMAT)
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise UserError(f"{path}: no {listed}" + (f" {purpose}" if purpose else ""))
    return found


def read_record(file: Path) -> dict:
    """The stage.json beside a model file (or in a model directory), or {}."""
    import json

    folder = file if file.is_dir() else file.parent
    stage = folder / "stage.json"
    return json.loads(stage.read_text()) if stage.exists() else {}


def open_model(path: str | Path, threads: int | None = None, among: tuple[str, ...] | None = None,
               error: type[Exception] = UserError, record: dict | None = None,
               scoring: bool = False):
    """(runner, format) of the model `path` holds (see `model_file`), opened as its
    stage.json says it was checked (precision, tokenizer inside); `scoring`: as it is
    scored, where that differs from how it is timed (Format.score_opener)."""
    file, name = require_model_file(path, among, "to run")
    fmt = FORMATS[name]
    fmt.require(error)
    return fmt.open(file, threads, read_record(file) if record is None else record, error,
                    scoring), fmt
