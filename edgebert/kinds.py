"""Task kinds: what each kind of head declares, once. Torch-free.

A kind says which transformers head it trains, which roles its data has, which dev
metric selects models, what its ONNX outputs are called and which of their axes are
dynamic, how one example's outputs are cut from a padded batch, whether outputs have a
top-1 to agree on, and whether the runtime serves it. Stages ask `kind(name)` instead
of branching on the name.

Still branching on the name, to move here next: the readers (data/tasks.py), the
encoders (data/encode.py), the scorers (predict.py), the distillation reductions
(distill/losses.py) and the runtime's post-processing (runtime.py, export/text_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgebert.errors import UserError


@dataclass(frozen=True)
class Kind:
    name: str
    head: str
    """The transformers Auto class that adds this kind's head."""
    metric: str
    """The dev metric that early stopping and model selection follow."""
    roles: tuple[str, ...]
    """Columns a csv / tsv / jsonl row needs (renamed with --columns ROLE=COLUMN)."""
    outputs: tuple[str, ...] = ("logits",)
    """ONNX output names."""
    per_token: bool = False
    """Outputs carry the sequence axis (one row per token, or start/end positions)."""
    served: bool = True
    """The runtime (edgebert.runtime) and `edgebert bundle` serve it."""
    top1: bool = True
    """Outputs are scores over classes or positions, so an export's top-1 agreement counts."""
    regression: bool = False
    """One real-valued output (num_labels 1, MSE)."""

    def head_options(self, labels: list[str]) -> dict:
        """`from_pretrained` keyword arguments for this head and these labels."""
        if self.regression:
            return {"num_labels": 1, "problem_type": "regression"}
        if not labels:
            return {}
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {name: i for i, name in enumerate(labels)}}

    def output_axes(self) -> dict[str, dict[int, str]]:
        """Dynamic axes of each ONNX output."""
        axes = {0: "batch", 1: "sequence"} if self.per_token else {0: "batch"}
        return {name: axes for name in self.outputs}

    def from_outputs(self, outs: list[np.ndarray]) -> np.ndarray:
        """A runtime's output list as one array, shaped like `predict.torch_forward`'s:
        start and end positions stacked as [B, 2, L]."""
        return np.stack(outs[:2], 1) if len(self.outputs) == 2 else outs[0]

    def trim(self, row: np.ndarray, length: int) -> np.ndarray:
        """One example's outputs from a batch row padded past its `length` tokens."""
        if not self.per_token:
            return row
        return row[:, :length] if len(self.outputs) == 2 else row[:length]


KINDS = {k.name: k for k in (
    Kind("classification", "AutoModelForSequenceClassification", "accuracy", ("text", "label")),
    Kind("pair", "AutoModelForSequenceClassification", "accuracy",
         ("text", "text_pair", "label")),
    Kind("regression", "AutoModelForSequenceClassification", "pearson", ("text", "label"),
         top1=False, regression=True),
    Kind("ner", "AutoModelForTokenClassification", "entity_f1", ("tokens", "tags"),
         per_token=True),
    Kind("qa", "AutoModelForQuestionAnswering", "f1", ("question", "context", "answers"),
         outputs=("start_logits", "end_logits"), per_token=True, served=False),
)}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"task kind '{name}' is not one of {', '.join(KINDS)}") from None
