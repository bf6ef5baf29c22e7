"""The trim-vocab stage's config: `edgebert trim-vocab`'s options and a recipe's
`trim_vocab` derive from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from edgebert.config import check


@dataclass
class TrimVocabConfig:
    """Trim a model's vocabulary to the WordPiece tokens its domain uses."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Keep only the WordPiece tokens the task (and a corpus) uses; embeddings shrink.

Outputs on the kept texts are checked to be unchanged; dev and test scores
before and after are recorded in metrics.json. Text outside the kept set splits
into shorter pieces; where that costs more than --max-drop dev points, the
vocabulary's most common pieces are kept too (the tries are in metrics.json).

\b
Example:
  edgebert trim-vocab --model runs/rt/student --out runs/rt/student-trim
  edgebert trim-vocab --model runs/rt/student --out runs/rt/student-trim3 --min-count 3
"""

    model: str = "runs/student"
    """Model artifact to trim (teacher or student)."""
    out: str = "runs/student-trimmed"
    """Trimmed artifact directory to write."""
    splits: list[str] = field(default_factory=lambda: ["train"],
                              metadata={"metavar": "train,dev"})
    """Task splits whose texts decide what to keep (comma-separated on the command line).
    Keep to train for an honest test score: test words the training data never used become
    shorter pieces or [UNK]."""
    corpus: str | None = None
    """Optional plain-text file (one text per line) whose tokens are kept too."""
    min_count: int = 1
    """Keep only pieces the kept texts use at least this many times (single characters and
    special tokens always stay). Above 1 the trim is lossy on the kept texts too: their words
    with a rarer piece split into shorter pieces; past --max-drop, lower counts are tried in
    turn before the vocabulary is widened. Texts whose every piece was kept still give
    exactly the outputs they gave before (checked)."""
    max_drop: float | None = 0.25
    """Dev points trimming may lose (text outside the kept set splits into shorter pieces):
    past it, the vocabulary's most common pieces are kept as well, 2,000 then 5,000, 10,000,
    20,000, then all, until the drop fits. None (none on the command line): the kept texts'
    pieces only, no guard."""

    def __post_init__(self):
        check(self.max_drop is None or self.max_drop >= 0, "--max-drop", "must be >= 0")
        check(self.min_count >= 1, "--min-count", f"must be >= 1, got {self.min_count}")
        bad = [s for s in self.splits if s not in ("train", "dev", "test")]
        check(not bad, "--splits", f"unknown split(s) {bad}; use train, dev, test")
