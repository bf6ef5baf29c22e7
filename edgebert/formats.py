"""Which model file an artifact holds, and ONNX Runtime sessions over such files: torch-free.

Every part that looks into an artifact directory for its model, or opens an ONNX / ORT
file, asks here: the stages (export, quantize, bundle), evaluate, bench and its worker,
the report and the runtime apps embed. Only the standard library is imported at module
level, onnxruntime when a session is made; nothing here needs torch. (The arm64 runner
is the one exception: it runs under emulation with just onnxruntime and numpy.)
"""

from __future__ import annotations

from pathlib import Path

from edgebert.errors import UserError

MODEL_FILES = (("model.safetensors", "pytorch"), ("model.onnx", "onnx"), ("model.ort", "ort"),
               ("model.pt", "torchscript"), ("model.pt2", "pt2"))
"""Every model file a stage writes, and its format, in the order a directory is read:
PyTorch weights first (the model every other file was made from)."""
ORT_FILES = ("model.onnx", "model.ort")
"""What ONNX Runtime runs."""
EXPORTS_FIRST = tuple(n for n, f in MODEL_FILES if f != "pytorch") + ("model.safetensors",)
"""The order that names an artifact by what it ships (a report row): the export, not the
weights it was made from."""
FORMAT = dict(MODEL_FILES)
SUFFIXES = {Path(name).suffix: fmt for name, fmt in MODEL_FILES if fmt != "pytorch"}


def model_file(path: str | Path, among: tuple[str, ...] | None = None
               ) -> tuple[Path, str] | None:
    """(file, format) of the model `path` runs from: the first of `among` (default: every
    name in MODEL_FILES order) that the directory holds, or `path` itself when it is a model
    file (.onnx, .ort, .pt, .pt2) of one of those formats; None otherwise."""
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


def extensions_library(error: type[Exception] = UserError) -> str:
    """Path of the onnxruntime-extensions custom-op library (its Python wheel ships it):
    the tokenizer-in-graph models need it."""
    try:
        from onnxruntime_extensions import get_library_path
    except ImportError:
        raise error("a model with the tokenizer inside needs onnxruntime-extensions "
                    "(pip install onnxruntime-extensions)") from None
    return get_library_path()


def session(path: str | Path | bytes, threads: int | None = None, exact_int8: bool = False,
            custom_ops: bool = False, error: type[Exception] = UserError,
            config: dict[str, str] | None = None):
    """An ORT CPU session over a file or serialized model bytes.

    `threads`: intra-op threads (one inter-op), as an app ships it; None: ORT's default.
    `exact_int8`: on x86 without VNNI use U8U8 products instead of the U8S8 ones whose int16
    pair sums saturate (ORT's `session.x64quantprecision`): slower, but the reference an ARM
    (SDOT, no saturation) result should match. `custom_ops`: register onnxruntime-extensions'
    ops (the tokenizer-in-graph models). `config`: session config entries (none are shipped:
    `benchmarks/ort_session_options.py` found none faster than ORT's defaults at batch 1
    on 2 cores). A file ORT cannot load raises `error`, named."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, value)
    if exact_int8:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    if custom_ops:
        opts.register_custom_ops_library(extensions_library(error))
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = path if isinstance(path, bytes) else str(path)
    try:
        return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own types (InvalidProtobuf, Fail, ...)
        where = "model bytes" if isinstance(path, bytes) else path
        raise error(f"{where}: ONNX Runtime cannot load it ({str(err).splitlines()[0][:200]}); "
                    f"the file is corrupt or not an ONNX model, export it again") from None
