"""TorchScript: a traced module with the same three inputs as the ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.predict import INPUTS, Forward


def export_torchscript(model, kind: str, path: Path) -> Path:
    import warnings

    import torch

    from edgebert.export.wrap import PlainOutputs

    from edgebert.kinds import kind as task_kind

    ids = torch.full(task_kind(kind).input_shape(2, 16), 5, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(PlainOutputs(model, kind, stack_qa=True),
                                 (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                                 check_trace=False)
    traced.save(str(path))
    return path


def torchscript_forward(path: Path) -> Forward:
    import torch

    return module_forward(torch.jit.load(str(path), map_location="cpu").eval())


def module_forward(module) -> Forward:
    """A forward over any module that takes the three inputs positionally and returns one
    tensor (PlainOutputs, a TorchScript module, an exported program); a batch without
    token types (DistilBERT's) feeds zeros, which PlainOutputs does not pass on."""
    import torch

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        zeros = np.zeros_like(batch["input_ids"])  # an input the model's family does not take
        with torch.no_grad():
            return module(*(torch.from_numpy(batch.get(k, zeros)) for k in INPUTS)
                          ).float().numpy()

    return forward
