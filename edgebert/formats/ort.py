"""ONNX Runtime: sessions over .onnx and .ort files, and a runner over a session. Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.formats.format import Format


def extensions_library(error: type[Exception] = UserError) -> str:
    """Path of the onnxruntime-extensions custom-op library (its Python wheel ships it):
    the tokenizer-in-graph models need it. Found in the package's folder without importing
    the package: its __init__ imports transformers (3.7 s of a 4.7 s bench process here,
    and torch where it is installed)."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None:
        raise error("a model with the tokenizer inside needs onnxruntime-extensions "
                    "(pip install onnxruntime-extensions)")
    for folder in spec.submodule_search_locations or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            library = Path(folder) / f"_extensions_pydll{suffix}"
            if library.is_file():
                return str(library)
    from onnxruntime_extensions import get_library_path  # a layout not known here

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


class OrtRunner:
    """A model run by ONNX Runtime: `inputs` (names it takes), `outputs` (names it gives),
    and `runner(feeds)` -> its outputs, in order. Inputs it does not take are dropped."""

    def __init__(self, sess):
        self.session = sess
        self.inputs = {i.name for i in sess.get_inputs()}
        self.outputs = [o.name for o in sess.get_outputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})


def open_ort(path: Path, threads: int | None = None, record: dict | None = None,
             error: type[Exception] = UserError) -> OrtRunner:
    """A runner over an .onnx / .ort file; a model with the tokenizer inside (stage.json's
    input "text") gets onnxruntime-extensions' ops registered."""
    text_in = (record or {}).get("input") == "text"
    return OrtRunner(session(path, threads, custom_ops=text_in, error=error))


DECLARED = (
    Format("onnx", "model.onnx", "onnxruntime", open_ort, order=10, served=True,
           writer="edgebert.stages.export.onnx:write_onnx"),
    Format("ort", "model.ort", "onnxruntime", open_ort, order=20, served=True,
           writer="edgebert.stages.export.onnx:write_ort"),
)
