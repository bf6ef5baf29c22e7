"""The finetune stage's config: `edgebert finetune`'s options and a recipe's `teacher`
derive from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from edgebert.config import TaskConfig, TrainConfig, check

TEACHER_HEAD_LR = 2e-2
"""A fine-tuning's fresh head: the packaged MiniLM's pooled output is small (std 0.07
against 0.4 for its [CLS] state), so at the encoder's lr its new head barely moves in a
short run. Measured at 2.3 epochs: trec-50's teacher 54.8 -> 91.3 % test, WNUT's entity F1
0.378 -> 0.479, Rotten Tomatoes unchanged (81.3 / 81.1 %); the benchmark store's teacher rows, `head lr/*`."""


@dataclass
class FinetuneConfig:
    """Fine-tune a BERT checkpoint with a task head into a teacher."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Fine-tune a BERT checkpoint with a task head into a teacher.

\b
Examples:
  edgebert finetune --model minilm-l6 --task rotten-tomatoes --out runs/rt/teacher
  edgebert finetune --model minilm-l6 --task wnut-ner --epochs 8 --lr 1e-4 --out runs/ner/teacher
  edgebert finetune --model ./my-bert --task reviews.csv --kind classification \\
      --columns text=review --columns label=stars --out runs/reviews/teacher

A killed run resumes from its last checkpoint when the same command runs again.
"""

    model: str = "minilm-l6"
    """Starting checkpoint: packaged name, local model directory, or hub id."""
    out: str = "runs/teacher"
    """Artifact directory to write (must not exist, or be an unfinished run to resume)."""
    max_length: int = 128
    """Tokens per example; longer texts are truncated and counted."""
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(head_lr=TEACHER_HEAD_LR))

    def __post_init__(self):
        check(8 <= self.max_length <= 4096, "--max-length",
              f"must be between 8 and 4096, got {self.max_length}")
