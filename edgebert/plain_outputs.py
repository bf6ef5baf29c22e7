"""A module with plain tensor inputs and outputs, for the tracing exporters: ONNX (core's
onnx_export), TorchScript and ExecuTorch (the export stage), INC's program (quantize)."""

from __future__ import annotations

import torch

from edgebert.families import model_inputs
from edgebert.kinds import kind


class PlainOutputs(torch.nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> logits; QA -> (start, end) or, with
    `stack_qa`, one [B, 2, L] tensor. Token types a model does not take (DistilBERT's, a
    one-type RoBERTa's) may be given and are not passed on: a TorchScript module takes the
    same three inputs whatever the family, and the ONNX export names only the model's
    own. Built in eval mode: exporters restore the wrapper's mode afterwards,
    recursively, and a fresh Module would switch the parent's dropout on."""

    def __init__(self, inner, kind: str, stack_qa: bool = False):
        super().__init__()
        self.inner, self.kind, self.stack_qa = inner.eval(), kind, stack_qa
        self.types = "token_type_ids" in model_inputs(inner)
        self.eval()

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if self.types else {}
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if len(kind(self.kind).outputs) == 1:
            return out.logits
        if self.stack_qa:
            return torch.stack([out.start_logits, out.end_logits], 1)
        return out.start_logits, out.end_logits
