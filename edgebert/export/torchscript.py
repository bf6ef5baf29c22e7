"""TorchScript: a traced module with the same three inputs as the ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.predict import INPUTS, Forward


def export_torchscript(model, kind: str, path: Path) -> Path:
    import warnings

    import torch

    class Plain(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids)
            return torch.stack([out.start_logits, out.end_logits], 1) if kind == "qa" \
                else out.logits

    ids = torch.full((2, 16), 5, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Plain(model.eval()).eval(),
                                 (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                                 check_trace=False)
    traced.save(str(path))
    return path


def torchscript_forward(path: Path) -> Forward:
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return module(*(torch.from_numpy(batch[k]) for k in INPUTS)).numpy()

    return forward
