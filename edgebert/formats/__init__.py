"""Artifact formats: each model file a stage writes, the runtime that runs it, and how to
open it. Torch-free: only the standard library and numpy at import; a runtime is imported
when a model is opened.

Each module of this package opens the formats of one runtime and declares them beside its
openers (`DECLARED`, a tuple of `Format`); `FORMATS` collects them. Every part that looks
into an artifact directory for its model asks here: the stages (export, quantize, bundle),
evaluate, bench and its worker, the report and the runtime apps embed. Each format opens to
a *runner*: `runner.inputs` (names it takes), `runner.outputs` (names it gives) and
`runner(feeds)` -> its outputs as numpy arrays, so scoring, timing and serving never branch
on the format.

The modules are found, not listed, so that adding a format touches one module here (and
its writer in the export stage, `edgebert/stages/export/`, where `edgebert export` writes
it). Each stays torch-free at import, importing its runtime when a model is opened; the
tests check that the modules of torch-free formats never import torch, even lazily.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from edgebert.errors import UserError
from edgebert.formats.format import Format
from edgebert.formats.ort import extensions_library, session


def declared() -> dict[str, Format]:
    """Every format the modules of this package declare (`DECLARED`), by `order`."""
    found = [f for info in pkgutil.iter_modules(__path__)
             for f in getattr(importlib.import_module(f"{__name__}.{info.name}"), "DECLARED", ())]
    for key in ("name", "file", "order"):  # one format each: none may hide another
        seen = [getattr(f, key) for f in found]
        if len(set(seen)) != len(seen):
            raise RuntimeError(f"edgebert.formats: two formats declare the same {key}: "
                               f"{sorted({v for v in seen if seen.count(v) > 1})}")
    return {f.name: f for f in sorted(found, key=lambda f: f.order)}


FORMATS: dict[str, Format] = declared()

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
