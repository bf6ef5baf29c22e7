"""OpenVINO: IR files (model.xml + model.bin) and a runner over a compiled model. Torch-free;
`openvino` is imported when a model is opened, and its absence is one line.

OpenVINO reads our plain ONNX exports directly (not ONNX Runtime's contrib ops such as
QAttention, so it starts from the FP32 export) and picks its kernels per CPU: with
AMX-BF16 it runs a float model in bf16 by default (the MiniLM teacher 3x faster than in
fp32).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.formats.format import Format

INSTALL = "pip install 'edgebert[openvino]'"


def require_openvino(error: type[Exception] = UserError):
    """The `openvino` module, or `error` in one line that says how to install it."""
    try:
        import openvino
    except ImportError:
        raise error(f"openvino artifacts need the openvino package ({INSTALL})") from None
    return openvino


HINTS = {"fp32": "f32", "f32": "f32", "bf16": "bf16"}
"""Precision names (ours, and OpenVINO's own f32) -> INFERENCE_PRECISION_HINT values."""


def config(threads: int | None, precision: str | None) -> dict:
    """Compile settings as an app ships them: latency mode (one stream), a fixed thread
    count, and the precision the artifact was checked in (None: OpenVINO's default)."""
    out: dict = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        out["INFERENCE_NUM_THREADS"] = threads
    if precision:
        out["INFERENCE_PRECISION_HINT"] = HINTS[precision]
    return out


def check_precision(precision: str | None, where: Path, error: type[Exception]) -> None:
    if precision is not None and precision not in HINTS:
        raise error(f"{where}: inference precision {precision!r} is not one of "
                    f"{', '.join(HINTS)}")


def runnable_precision(core, wanted: str | None) -> str | None:
    """`wanted`, where this CPU's plugin runs it; fp32 where the artifact was checked in
    bf16 and this CPU has no bf16 (OpenVINO would emulate it, slower and not what was
    checked)."""
    if wanted == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return "fp32"
    return wanted


BUCKETS = (16, 32, 64, 128)
"""Sequence lengths compiled with static shapes for one text at a time: OpenVINO pays for
every new input shape, so a text is padded to the next bucket (masked) instead. On the
default chain's bf16 IR and Rotten Tomatoes' test texts (27 tokens on average, 2 threads)
p50 went from 1.31 ms with dynamic shapes to 0.67 ms. Longer inputs and batches run on the
dynamic model."""


class OpenVinoRunner:
    """A compiled OpenVINO model: `inputs`, `outputs` (names) and `runner(feeds)` -> its
    outputs in order (copies: the requests reuse their buffers). One text [1, L] runs on
    the static model of the next bucket (BUCKETS), padded and its per-token outputs cut
    back to L; anything else on the dynamic model. Calls from several threads are
    serialized; one request per model keeps latency mode's single stream."""

    def __init__(self, path: Path, threads: int | None = None, precision: str | None = None,
                 error: type[Exception] = UserError, buckets: tuple[int, ...] = BUCKETS):
        ov = require_openvino(error)
        check_precision(precision, path, error)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            self.precision = runnable_precision(core, precision)
            settings = config(threads, self.precision)
            self.compiled = core.compile_model(model, "CPU", settings)
            self.static = self._buckets(core, model, settings, buckets)
        except Exception as err:  # OpenVINO raises RuntimeError for a bad or missing file
            raise error(f"{path}: OpenVINO cannot load it ({str(err).splitlines()[0][:200]}); "
                        f"the file is corrupt or incomplete, export it again") from None
        self.request = self.compiled.create_infer_request()
        self.inputs = {i.get_any_name() for i in self.compiled.inputs}
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]
        # outputs with a sequence axis (dynamic dimension 1: per-token tags, QA start/end)
        self.per_token = [o.get_partial_shape().rank.get_length() >= 2
                          and o.get_partial_shape()[1].is_dynamic for o in model.outputs]
        self._lock = threading.Lock()

    @staticmethod
    def _buckets(core, model, settings: dict, buckets: tuple[int, ...]) -> dict:
        """{length: infer request} of the model reshaped to [1, length], where every input
        is [batch, sequence] (multiple choice's [batch, choices, sequence] is not)."""
        if any(i.get_partial_shape().rank.get_length() != 2 for i in model.inputs):
            return {}
        out = {}
        for length in buckets:
            static = model.clone()
            static.reshape({i.get_any_name(): [1, length] for i in static.inputs})
            out[length] = core.compile_model(static, "CPU", settings).create_infer_request()
        return out

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        shape = next(iter(feeds.values())).shape
        bucket = next((b for b in self.static if b >= shape[1]), None) \
            if len(shape) == 2 and shape[0] == 1 else None
        with self._lock:
            if bucket is None:
                res = self.request.infer(feeds)
                return [np.array(res[o]) for o in self.compiled.outputs]
            # padding is masked out (attention_mask 0): the text's outputs are unchanged
            pad = ((0, 0), (0, bucket - shape[1]))
            request = self.static[bucket]
            res = request.infer({k: np.pad(v, pad) for k, v in feeds.items()})
            outs = [np.array(res[o]) for o in request.model_outputs]
        return [o[:, :shape[1]] if cut else o for o, cut in zip(outs, self.per_token)]


def open_openvino(path: Path, threads: int | None = None, record: dict | None = None,
                  error: type[Exception] = UserError) -> OpenVinoRunner:
    """A runner over model.xml, in the precision its stage.json records."""
    return OpenVinoRunner(path, threads, (record or {}).get("inference_precision"), error)


def save_ir(onnx_path: Path, xml: Path, precision: str) -> Path:
    """The ONNX model at `onnx_path` as OpenVINO IR (`xml` and the .bin beside it). Weights
    are stored in fp16 for a bf16 artifact (half the file; bf16 arithmetic rounds them
    further anyway) and in fp32 for an fp32 one."""
    ov = require_openvino()
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml),
                  compress_to_fp16=precision != "fp32")
    return xml


DECLARED = (
    Format("openvino", "model.xml", "openvino", open_openvino, order=30, companions=("model.bin",),
           served=True, install=INSTALL, writer="edgebert.stages.export.openvino:write_openvino"),
)
