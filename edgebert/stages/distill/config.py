"""The distill stages' config (task distillation, and general distillation with a corpus):
`edgebert distill`'s options and a recipe's `students` derive from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from edgebert.config import DistillLossConfig, TrainConfig, check


@dataclass
class DistillConfig:
    """Distil a fine-tuned teacher into a smaller student on the teacher's task."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Distil a fine-tuned teacher into a smaller student (DistilBERT / TinyBERT losses).

The student starts from teacher layers (--layers) or is built narrower with
fresh weights (--hidden-size/--heads/--ffn), and trains on the teacher's task.
Loss = kl * KL(T) * T^2 + ce * hard labels + cos/hidden-mse/attn-mse on mapped layers.

\b
Examples:
  edgebert distill --teacher runs/rt/teacher --layers 0,2,4 --out runs/rt/student
  edgebert distill --teacher runs/rt/teacher --layers 0,5 --cos 1 --epochs 5 --out runs/rt/s2
  edgebert distill --teacher runs/rt/teacher --layers 0,2,4 --hidden-size 192 --heads 6 \\
      --ffn 768 --hidden-mse 1 --out runs/rt/narrow
  edgebert distill --teacher runs/rt/teacher --layers 0,2,4 --kl 0 --ce 1 --out runs/rt/ctrl
  edgebert distill --teacher minilm-l6 --corpus corpus.txt --layers 0,2,4 --out runs/g3l
  edgebert distill --teacher runs/rt/teacher --student runs/g3l --out runs/rt/s3  # TinyBERT
"""

    teacher: str = "runs/teacher"
    """Fine-tuned teacher artifact (from `edgebert finetune`)."""
    out: str = "runs/student"
    """Student artifact directory to write."""
    task: str | None = None
    """Task to distil on (default: the teacher's, from its stage.json); same labels needed."""
    layers: list[int] | None = None
    """Teacher layers the student starts from, e.g. [0, 2, 4] (default: every other layer)."""
    hidden_size: int | None = None
    """Build a narrower student with fresh weights: its hidden size (default: the teacher's)."""
    heads: int | None = None
    """Attention heads of a narrower student (default: the teacher's)."""
    ffn: int | None = None
    """Feed-forward size of a narrower student (default: the teacher's)."""
    student: str | None = None
    """Start from this model instead of teacher layers, all of its layers (a new task head
    when it has none): TinyBERT's second stage after general distillation (--corpus)."""
    corpus: str | None = None
    """General (task-agnostic) distillation on this text file, one text per line: hidden
    states (and attention) always, MLM soft targets too when the teacher has an MLM head.
    The teacher is then any encoder (e.g. minilm-l6), and the student an encoder to fine-tune."""
    max_length: int = 128
    """General distillation: tokens per corpus line."""
    augment: int = 0
    """Unlabeled copies of each training text with words masked or dropped (classification,
    pairs and regression): the student learns the teacher's soft targets on them (Tang et
    al. 2019)."""
    augment_file: str | None = None
    """A text file, one text per line, added without labels for the soft-target losses."""
    factorize_embeddings: int | None = None
    """Rank E of a factorized word embedding for the student (ALBERT's): vocabulary x E,
    then E x hidden, initialised from the SVD of the teacher's table and recovered by this
    distillation. E.g. 128: the table shrinks by about hidden / E."""
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        check(self.augment >= 0, "--augment", "must be >= 0")
        check(not (self.corpus and (self.augment or self.augment_file)), "--corpus",
              "general distillation takes no --augment options")
        if self.layers is not None:
            check(len(self.layers) > 0, "--layers", "give at least one layer")
            check(len(set(self.layers)) == len(self.layers), "--layers",
                  f"layers repeat: {self.layers}")
            check(all(i >= 0 for i in self.layers), "--layers", "layers count from 0")
        for name in ("hidden_size", "heads", "ffn"):
            value = getattr(self, name)
            check(value is None or value > 0, f"--{name.replace('_', '-')}", "must be > 0")
        check(not (self.student and self.corpus), "--student",
              "is for task distillation after general distillation; drop --corpus")
        check(not (self.student and (self.layers or self.narrow)), "--student",
              "starts from that model's own layers and sizes: drop --layers and the width "
              "options")

    @property
    def narrow(self) -> bool:
        return any(v is not None for v in (self.hidden_size, self.heads, self.ffn))
