"""What a task kind declares: the base class every kind's module fills in. Torch-free,
in functions too (the runtime imports it): the distillation terms are named here and
computed by edgebert.losses.

A kind owns everything that depends on the shape of its data: reading rows into
examples, encoding them into features, scoring outputs, which distillation terms fit its
outputs, the ONNX names and dynamic axes, and what the runtime returns. Stages call
these methods and never branch on the kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from edgebert.data.features import Encoded
from edgebert.errors import UserError


MAX_AUTO_EPOCHS = 3.0
"""How far --min-examples raises a small task's epochs, unless its kind says otherwise: one
label per example is memorised after a few passes (BERT's fine-tuning recipe uses 2-4)."""


@dataclass(frozen=True)
class Kind:
    name: str
    head: str
    """The transformers Auto class that adds this kind's head."""
    metric: str
    """The dev metric that early stopping and model selection follow."""
    roles: tuple[str, ...]
    """Columns a csv / tsv / jsonl row needs (renamed with --columns ROLE=COLUMN)."""
    optional_roles: tuple[str, ...] = ()
    """Columns a row may have."""
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
    windows: bool = False
    """Long inputs become several overlapping windows instead of being truncated."""
    augment: bool = False
    """`distill --augment` can perturb its texts into unlabeled extra examples."""
    max_auto_epochs: float = MAX_AUTO_EPOCHS
    """--min-examples raises a small task's epochs to at most this."""
    truncation: str = "longest_first"
    """How the runtime's tokenizer cuts a text (pair) past max_length, as training does."""
    text_graph: str | None = None
    """What `export --with-tokenizer` appends to the graph: "labels", "value" or "tags";
    None: the kind is refused there."""
    soft_loss: Literal["kl", "kl_tokens", "kl_positions", "mse"] = "kl"
    """The distillation term between student and teacher outputs (edgebert.losses.soft_loss):
    "kl" over the classes, "kl_tokens" the same at each real token, "kl_positions" over
    the sequence axis (QA's start and end), "mse" between real values."""
    hard_loss: Literal["model", "ce", "mse"] = "model"
    """The supervised term (edgebert.losses.hard_loss): "model", the model's own loss; "ce"
    or "mse" over the labeled rows only (augmented rows carry label -100)."""
    tiebreak: str | None = None
    """A continuous dev score (lower is better) that decides between evaluations whose
    metric ties. A small or imbalanced dev set saturates a count metric: sms-spam's student
    sat at dev F1 0.9825 from step 100 to 500, so patience stopped it after 0.6 of its 7.7
    epochs. None: ties are not improvements."""

    # ------------------------------------------------------------------ the head

    def head_options(self, labels: list[str]) -> dict:
        """`from_pretrained` keyword arguments for this head and these labels."""
        if self.regression:
            return {"num_labels": 1, "problem_type": "regression"}
        if not labels:
            return {}
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {name: i for i, name in enumerate(labels)}}

    # ------------------------------------------------------------------ reading

    def read_special(self, path: Path, text: str) -> list | None:
        """Rows of a file format only this kind reads (SQuAD json, CoNLL text); None: the
        file is csv / tsv / jsonl, read by columns."""
        return None

    def column_map(self, columns: list[str], given: dict[str, str]) -> dict[str, str]:
        """role -> column of a csv / tsv / jsonl file."""
        return {role: given.get(role, role) for role in self.roles}

    def rows(self, path: Path, records: list[tuple[str, dict]], columns: list[str],
             given: dict[str, str]) -> list[dict]:
        """Each record's roles (`_where` names its line), refusing missing or empty cells."""
        mapping = self.column_map(columns, given)
        refuse_missing(path, [f"{role} (column '{col}')" for role, col in mapping.items()
                              if col not in columns], columns)
        rows = []
        for where, rec in records:
            row = {"_where": where}
            for role, col in mapping.items():
                value = rec.get(col)
                if value is None or (role == "label" and str(value).strip() == ""):
                    raise UserError(f"{path}: {where}: empty '{col}'")
                row[role] = self.cell(value)
            rows.append(row)
        return rows

    def cell(self, value):
        return str(value)

    def build(self, raw: dict[str, list], files: dict[str, Path]) -> tuple[list[str], dict]:
        """(labels, splits of examples) from each split's rows."""
        raise NotImplementedError

    def texts(self, example) -> list[str]:
        """The strings of one example, for vocabulary trimming."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the model

    def encode(self, examples: list, tokenizer, max_length: int, stride: int) -> Encoded:
        raise NotImplementedError

    def score(self, labels: list[str], examples: list, encoded: Encoded,
              outputs: list[np.ndarray]) -> dict:
        """Task metrics of one split's outputs (one array per feature)."""
        raise NotImplementedError

    def outcomes(self, labels: list[str], examples: list, encoded: Encoded,
                 outputs: list[np.ndarray]) -> dict | None:
        """Per-example predictions and truths of one split, for the report's paired
        standard error of a model's difference to its teacher (metrics.paired_se); None
        where the kind does not resample (its metric is not per example)."""
        return None

    # ------------------------------------------------------------------ export

    def input_axes(self) -> dict[int, str]:
        """Dynamic axes of each ONNX input."""
        return {0: "batch", 1: "sequence"}

    def input_shape(self, batch: int, seq: int) -> tuple[int, ...]:
        """The shape of each input for `batch` examples of `seq` tokens (benchmarks)."""
        return (batch, seq)

    def output_axes(self) -> dict[str, dict[int, str]]:
        """Dynamic axes of each ONNX output."""
        axes = {0: "batch", 1: "sequence"} if self.per_token else {0: "batch"}
        return {name: axes for name in self.outputs}

    def from_outputs(self, outs: list[np.ndarray]) -> np.ndarray:
        """A runtime's output list as one array, shaped like `predict.torch_forward`'s."""
        return outs[0]

    def trim(self, row: np.ndarray, length: int) -> np.ndarray:
        """One example's outputs from a batch row padded past its `length` tokens."""
        return row[:length] if self.per_token else row

    # ------------------------------------------------------------------ serving

    def serve_items(self, texts, pairs=None, choices=None) -> list[tuple]:
        """`runtime.Model.predict`'s arguments as (what the caller passed, the sequences
        to tokenize: a str or a (text, pair) tuple each); refuses what the kind does not
        take."""
        if pairs is not None or choices is not None:
            raise ValueError(f"pairs / choices: not for a {self.name} model")
        texts = strings(texts, "texts")
        return [(t, [t]) for t in texts]

    def serve_result(self, logits: np.ndarray, encodings: list, given, labels: list[str]
                     ) -> dict:
        """What `predict` returns for one input, from the model's output row."""
        raise NotImplementedError

    def text_result(self, out: dict[str, np.ndarray], text: str, labels: list[str]) -> dict:
        """What `predict` returns from a one-file model's named outputs."""
        raise NotImplementedError

    def raw_text(self, example) -> tuple[str, str | None]:
        """The strings an app passes for one example (text, and pair or None)."""
        raise NotImplementedError

    def check_inputs(self, examples: list) -> dict | None:
        """`predict` keyword arguments that serve `examples`, for the bundle's runtime
        check of accuracy; None where the kind's outputs are not one choice per example."""
        return None

    def chosen(self, result: dict, labels: list[str]) -> int:
        """The class (or choice) index in one of `predict`'s results."""
        return labels.index(result["label"])


def refuse_missing(path: Path, missing: list[str], columns: list[str], roles: str = "") -> None:
    """One line naming the file, the missing roles and the columns there are."""
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}; columns are "
                        f"{', '.join(map(str, columns))}; map them with --columns "
                        f"ROLE=COLUMN{roles}")


def strings(values, name: str) -> list[str]:
    """The inputs as they are: a None or a number is a caller's bug, not text to classify."""
    if isinstance(values, str):
        values = [values]
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name}: item {bad[0]} is {type(values[bad[0]]).__name__}, not str")
    return list(values)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
