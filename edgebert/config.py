"""What every stage's config is made of: the shared configs (training, the task, the
distillation loss, timing), the Literal choices, the checks and `field_docs`.

Each stage declares its own dataclass in its package (`edgebert/stages/<name>/config.py`),
with its own defaults, checked in `__post_init__`; the docstring under each field is its
documentation and its `--help` text. These modules import no torch, so the CLI and recipe
loading start fast.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import ClassVar, Literal

from edgebert.errors import UserError
from edgebert.kinds import KINDS, ROLES

# Every option with a fixed set of values is a Literal: the one list of its choices, which
# the checks below, the CLI's click.Choice and the recipe loader all read.
KindName = Literal[tuple(KINDS)]  # each kind is declared once, in edgebert.kinds
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]
TASK_KINDS = typing.get_args(KindName)
PRECISIONS = typing.get_args(Precision)


def choices(hint) -> tuple:
    """The values a Literal type (or an optional one) allows; () for any other type."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) \
        else (hint,)
    for arg in args:
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return ()


def check_choices(cfg) -> None:
    """Every Literal field of `cfg` holds one of its values (None where optional)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        allowed, value = choices(hints[f.name]), getattr(cfg, f.name)
        check(not allowed or value is None or value in allowed, f"--{f.name.replace('_', '-')}",
              f"must be one of {', '.join(allowed)}, got '{value}'")


def check(cond: bool, option: str, message: str) -> None:
    """A config's check: a UserError that names the option, where `cond` fails."""
    if not cond:
        raise UserError(f"{option}: {message}")


@dataclass
class TrainConfig:
    """The one training loop's settings, shared by fine-tuning, distillation,
    pruning recovery and pretraining."""

    epochs: float = 3.0
    """Passes over the training data (fractions allowed); ignored when max_steps is set."""
    max_steps: int | None = None
    """Optimizer steps to run; overrides epochs."""
    min_examples: int = 0
    """Small training sets: raise epochs until this many examples are seen, up to 3 passes
    (10 for NER, a label per token; 0: off). The default recipe sets 10000, about one epoch
    of Rotten Tomatoes, where its one-epoch stages were tuned, so a 3,000-example task gets
    3 passes instead of one."""
    epoch_growth: float = 1.0
    """How the epochs grow below min_examples training examples (n): (min_examples / n) **
    epoch_growth passes. 1 sees min_examples examples whatever n; 2, the default recipe's
    students and pruning recoveries, more the smaller the set (Rotten Tomatoes' 10,231 texts:
    1 pass either way; TREC's 4,305: 5.4 instead of 2.3), because a student learning the
    teacher's soft targets was still improving at the end on small tasks."""
    max_auto_epochs: float | None = None
    """The most passes min_examples may raise epochs to (default: the task kind's, 3, or 10
    for NER, a label per token). Students need no cap against memorising labels."""
    batch_size: int = 32
    """Examples per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (effective batch = batch_size * grad_accum)."""
    lr: float = 5e-5
    """Peak learning rate of AdamW, reached after warmup, then decayed linearly to 0."""
    head_lr: float | None = None
    """Peak learning rate of the parameters outside the pretrained encoder: the task head a
    fine-tuning initialises fresh (fine-tuning: 2e-2; other stages: lr). A fresh head at
    the encoder's small lr spends most of a short run near the majority label."""
    weight_decay: float = 0.01
    """AdamW weight decay, not applied to biases and LayerNorm weights."""
    warmup: float = 0.06
    """Fraction of the optimizer steps spent warming the learning rate up from 0."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0 turns clipping off)."""
    eval_every: int = 0
    """Evaluate on the dev split every N optimizer steps (0: once per epoch)."""
    save_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: at every evaluation)."""
    patience: int = 0
    """Stop after this many evaluations without a better dev metric (0: never stop early)."""
    seed: int = 13
    """Seed for initialisation, dropout and data order."""
    precision: Precision = "auto"
    """auto (bf16 autocast on a GPU that has it and on a CPU with AMX-BF16, where a
    distillation step ran 1.49x faster; fp32 elsewhere), fp32, bf16 or fp16."""
    device: Device = "auto"
    """auto (a GPU when there is one: under torchrun, each rank its LOCAL_RANK'th), cpu
    or cuda (an error where there is none)."""
    threads: int | None = None
    """CPU threads for PyTorch (default: what torch picks)."""
    group_by_length: bool = False
    """Batch examples of similar length together (sorted within shuffled windows of 50
    batches; batch order shuffled): less padding, so faster steps on short, varied texts."""

    def __post_init__(self):
        check_choices(self)
        check(self.epochs > 0, "--epochs", f"must be > 0, got {self.epochs}")
        check(self.min_examples >= 0, "--min-examples", f"must be >= 0, got {self.min_examples}")
        check(self.epoch_growth >= 1, "--epoch-growth", f"must be >= 1, got {self.epoch_growth}")
        check(self.max_auto_epochs is None or self.max_auto_epochs >= 1, "--max-auto-epochs",
              f"must be >= 1, got {self.max_auto_epochs}")
        check(self.max_steps is None or self.max_steps > 0, "--max-steps", "must be > 0")
        check(self.batch_size > 0, "--batch-size", f"must be > 0, got {self.batch_size}")
        check(self.grad_accum > 0, "--grad-accum", f"must be > 0, got {self.grad_accum}")
        check(self.lr > 0, "--lr", f"must be > 0, got {self.lr}")
        check(self.head_lr is None or self.head_lr > 0, "--head-lr",
              f"must be > 0, got {self.head_lr}")
        check(0 <= self.warmup < 1, "--warmup", f"is a fraction in [0, 1), got {self.warmup}")
        check(self.max_grad_norm >= 0, "--max-grad-norm", "must be >= 0")
        check(self.eval_every >= 0, "--eval-every", "must be >= 0")
        check(self.save_every >= 0, "--save-every", "must be >= 0")
        check(self.patience >= 0, "--patience", "must be >= 0")
        check(self.threads is None or self.threads > 0, "--threads", "must be > 0")


@dataclass
class TaskConfig:
    """Which data to train and evaluate on."""

    name: str = "rotten-tomatoes"
    """A packaged task (rotten-tomatoes, wnut-ner, wordnet-mc), or a local file or directory
    (csv, tsv, jsonl; CoNLL `token<TAB>tag` text for NER; SQuAD json for QA; SWAG csv
    or jsonl with a list of choices for multiple choice). A
    directory holds train.*, dev.* (or validation.*) and test.*; a single file is
    split 80/10/10 with the seed."""
    kind: KindName | None = None
    """classification, pair, regression, ner, qa or multiple_choice; required for local
    files."""
    columns: dict[str, str] = field(default_factory=dict)
    """Map roles to column names: text, text_pair, label (ner jsonl: tokens, tags;
    multiple choice: context, choices (a list, or the prefix of numbered columns), label,
    start)."""
    seed: int = 13
    """Seed of the train/dev/test split."""
    limit: int | None = None
    """Keep at most this many examples of each split (a seeded sample): smoke tests only."""

    @classmethod
    def from_record(cls, record: dict) -> "TaskConfig":
        """The task config a stage recorded in its stage.json (`task_record`)."""
        return cls(record["name"], record["kind"], record["columns"], record["seed"],
                   record.get("limit"))

    def __post_init__(self):
        check_choices(self)
        check(self.limit is None or self.limit > 0, "--limit", "must be > 0")
        unknown = sorted(set(self.columns) - set(ROLES))
        check(not unknown, "--columns",
              f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


@cache
def field_docs(cls) -> dict[str, str]:
    """The docstring under each dataclass field, read from the source.

    >>> field_docs(TrainConfig)["lr"].startswith("Peak learning rate")
    True
    """
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@dataclass
class DistillLossConfig:
    """Weights of the distillation loss terms; a weight of 0 turns a term off."""

    temperature: float = 2.0
    """Softmax temperature T of the soft targets; the KL term is scaled by T^2."""
    WEIGHTS: ClassVar[tuple[str, ...]] = ("kl", "ce", "cos", "hidden_mse", "attn_mse")
    """The terms' weights, below: each >= 0, at least one > 0."""
    kl: float = 1.0
    """Soft-target KL divergence to the teacher (MSE to its outputs for regression)."""
    ce: float = 0.5
    """Hard-label loss (cross entropy; MSE for regression)."""
    cos: float = 0.0
    """Cosine alignment of hidden states, mapped layers (DistilBERT)."""
    hidden_mse: float = 0.0
    """MSE of hidden states, mapped layers, projected when widths differ (TinyBERT)."""
    attn_mse: float = 0.0
    """MSE of attention maps, mapped layers (TinyBERT); needs equal head counts."""

    def __post_init__(self):
        check(self.temperature > 0, "--temperature", f"must be > 0, got {self.temperature}")
        options = [f"--{name.replace('_', '-')}" for name in self.WEIGHTS]
        for name, option in zip(self.WEIGHTS, options):
            check(getattr(self, name) >= 0, option, "must be >= 0")
        check(any(getattr(self, name) for name in self.WEIGHTS), "/".join(options),
              "at least one weight must be > 0")


@dataclass
class BenchConfig:
    """Latency of artifacts, interleaved: each turn runs one artifact in a process of its own
    at fixed threads, after warm-up, so artifacts share the machine's noise but never a
    thread pool (`bench.latency.Turns`)."""

    batch: list[int] = field(default_factory=lambda: [1], metadata={"metavar": "1,8"})
    """Batch sizes of the padded inputs (comma-separated on the command line)."""
    seq: list[int] = field(default_factory=lambda: [128], metadata={"metavar": "32,128"})
    """Sequence lengths of the padded inputs (comma-separated on the command line)."""
    threads: int = 2
    """Intra-op threads for every run."""
    warmup: int = 10
    """Untimed runs first, per process."""
    runs: int = 30
    """Timed runs per process and round."""
    rounds: int = 5
    """Each round runs every artifact once, in its own process (interleaved)."""

    def __post_init__(self):
        for option, values in (("--batch", self.batch), ("--seq", self.seq)):
            check(bool(values) and all(v > 0 for v in values), option,
                  f"expected positive numbers like 1,8, got {values}")
        check(self.threads > 0, "--threads", f"must be > 0, got {self.threads}")
        check(self.warmup >= 0, "--warmup", f"must be >= 0, got {self.warmup}")
        check(self.runs > 0, "--runs", f"must be > 0, got {self.runs}")
        check(self.rounds > 0, "--rounds", f"must be > 0, got {self.rounds}")
