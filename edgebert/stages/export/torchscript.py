"""TorchScript: a traced module with the same three inputs as the ONNX export; the writer
of `--format torchscript`."""

from __future__ import annotations

from pathlib import Path

from edgebert.predict import Forward
from edgebert.stages.export.job import Job, Written


def write_torchscript(job: Job) -> Written:
    model = job.torch_model("TorchScript needs PyTorch weights (model.safetensors)")
    export_torchscript(model, job.opened.kind, job.target)
    return Written(torchscript_forward(job.target))


def export_torchscript(model, kind: str, path: Path) -> Path:
    import warnings

    import torch

    from edgebert.kinds import kind as task_kind
    from edgebert.plain_outputs import PlainOutputs

    ids = torch.full(task_kind(kind).input_shape(2, 16), 5, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(PlainOutputs(model, kind, stack_qa=True),
                                 (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                                 check_trace=False)
    traced.save(str(path))
    return path


def torchscript_forward(path: Path) -> Forward:
    from edgebert.formats.torch import open_torchscript

    runner = open_torchscript(path)
    return lambda batch: runner(batch)[0]
