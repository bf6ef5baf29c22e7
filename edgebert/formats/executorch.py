"""ExecuTorch: a `.pte` program (XNNPACK-delegated) and a runner over ExecuTorch's own
Python runtime. Importing this module stays torch-free; `executorch` is imported when a
model is opened, and its absence is one line.

ExecuTorch is the runtime PyTorch supports on phones: apps load model.pte with its Kotlin
(Android) or Swift (iOS) API (examples/mobile/). In Python, `executorch.runtime` loads
torch too (executorch 1.5.1's pybindings link libtorch), so a .pte bundle served here
is a check of what the phone runs, not a torch-free deployment.

A program is memory-planned for its largest input: every input has a fixed upper bound
of batch and tokens (the export's MAX_BATCH and the artifact's max_length), read here from
the program. Larger batches are run in slices; longer inputs are refused, named.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgebert.data.features import INPUTS
from edgebert.errors import UserError
from edgebert.formats.format import Format


def set_threads(threads: int | None) -> None:
    """XNNPACK's thread pool size (one pool per process, shared by every program)."""
    if threads:
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)


_quantized_kernels: list = []


def load_quantized_kernels() -> None:
    """Register ExecuTorch's quantized kernels (the packed word-table lookups of an INT8
    program, `quantized_decomposed::embedding_*bit`) with the runtime, once per process:
    the Python bindings link the optimized kernels only, and the library registers itself
    with the runtime they share when it loads."""
    if _quantized_kernels:
        return
    import ctypes

    import executorch

    for root in executorch.__path__:
        lib = Path(root) / "lib" / "libexecutorch_kernels_quantized.so"
        if lib.exists():
            _quantized_kernels.append(ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL))
            return


class ExecuTorchRunner:
    """A loaded .pte program: `inputs`, `outputs` (names) and `runner(feeds)` -> its outputs
    as numpy arrays. Calls from several threads are serialized (a Method holds its own
    planned buffers)."""

    def __init__(self, path: Path, threads: int | None = None, outputs: tuple[str, ...] = (
            "logits",), error: type[Exception] = UserError):
        from executorch.runtime import Runtime  # callers `Format.require` it first

        set_threads(threads)
        load_quantized_kernels()
        try:
            program = Runtime.get().load_program(Path(path))
            self.method = program.load_method("forward")
            meta = self.method.metadata
        except Exception as err:  # ExecuTorch raises RuntimeError / ValueError for a bad file
            kernels = "" if _quantized_kernels else (
                "; an INT8 program's word table also needs ExecuTorch's quantized kernels "
                "(libexecutorch_kernels_quantized.so), which this executorch does not ship")
            raise error(f"{path}: ExecuTorch cannot load it ({str(err).splitlines()[0][:200]}); "
                        f"the file is corrupt or not a .pte program, export it again"
                        f"{kernels}") from None
        self.path = Path(path)
        self.inputs = set(INPUTS[:meta.num_inputs()])
        self.outputs = list(outputs)
        shape = meta.input_tensor_meta(0).sizes()  # [max batch, (choices,) max tokens]
        self.max_batch, self.max_tokens = int(shape[0]), int(shape[-1])
        self._lock = threading.Lock()

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        ids = feeds["input_ids"]
        if ids.shape[-1] > self.max_tokens:
            raise UserError(f"{self.path}: takes at most {self.max_tokens} tokens (its "
                            f"program is planned for that); got {ids.shape[-1]}")
        zeros = np.zeros_like(ids)  # token types of a family without them
        args = [np.ascontiguousarray(feeds.get(k, zeros), np.int64) for k in INPUTS[
            :len(self.inputs)]]
        parts = []
        with self._lock:
            for b in range(0, len(ids), self.max_batch):  # slices the program's batch bound
                outs = self.method.execute([torch.from_numpy(a[b:b + self.max_batch])
                                            for a in args])
                parts.append([o.numpy().copy() for o in outs])
        return [np.concatenate(cols) for cols in zip(*parts)]


def open_executorch(path: Path, threads: int | None = None, record: dict | None = None,
                    error: type[Exception] = UserError) -> ExecuTorchRunner:
    """A runner over model.pte; its outputs named as its task kind names them (stage.json's
    task, or a bundle manifest's kind)."""
    from edgebert.kinds import kind

    record = record or {}
    task = record.get("task")  # stage.json: the task record; a manifest: its name
    name = task["kind"] if isinstance(task, dict) else record.get("kind")
    return ExecuTorchRunner(path, threads, kind(name).outputs if name else ("logits",), error)


DECLARED = (
    # a phone's runtime (Kotlin, Swift); served in Python as a check, through executorch's
    # bindings (they load torch)
    Format("executorch", "model.pte", "executorch", open_executorch, order=40, served=True,
           install="pip install 'edgebert[executorch]'", kernels="XNNPACK",
           writer="edgebert.stages.export.executorch:write_executorch"),
)
