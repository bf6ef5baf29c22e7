"""One dataclass per stage, with its own defaults, checked in `__post_init__`.

This module imports no torch, so the CLI and recipe loading start fast. The
docstring under each field is its documentation and its `--help` text.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from edgebert.errors import UserError
from edgebert.kinds import KINDS, ROLES

# Every option with a fixed set of values is a Literal: the one list of its choices, which
# the checks below, the CLI's click.Choice and the recipe loader all read.
KindName = Literal[tuple(KINDS)]  # each kind is declared once, in edgebert.kinds
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]
Arch = Literal["bert", "roberta", "albert"]
ExportFormat = Literal["onnx", "ort", "openvino", "executorch", "torchscript"]
ExportPrecision = Literal["auto", "fp32", "bf16", "int8"]
QuantMode = Literal["dynamic", "static"]
Calibration = Literal["minmax", "entropy", "percentile"]
Engine = Literal["ort", "inc"]
Scope = Literal["layer", "global"]
Recover = Literal["none", "finetune", "distill"]
TokenizerKind = Literal["wordpiece", "bpe"]
TASK_KINDS = typing.get_args(KindName)
PRECISIONS = typing.get_args(Precision)
EXPORT_FORMATS = typing.get_args(ExportFormat)


def choices(hint) -> tuple:
    """The values a Literal type (or an optional one) allows; () for any other type."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) \
        else (hint,)
    for arg in args:
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return ()


def _check_choices(cfg) -> None:
    """Every Literal field of `cfg` holds one of its values (None where optional)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        allowed, value = choices(hints[f.name]), getattr(cfg, f.name)
        _check(not allowed or value is None or value in allowed, f"--{f.name.replace('_', '-')}",
               f"must be one of {', '.join(allowed)}, got '{value}'")


def _check(cond: bool, option: str, message: str) -> None:
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
        _check_choices(self)
        _check(self.epochs > 0, "--epochs", f"must be > 0, got {self.epochs}")
        _check(self.min_examples >= 0, "--min-examples", f"must be >= 0, got {self.min_examples}")
        _check(self.epoch_growth >= 1, "--epoch-growth", f"must be >= 1, got {self.epoch_growth}")
        _check(self.max_auto_epochs is None or self.max_auto_epochs >= 1, "--max-auto-epochs",
               f"must be >= 1, got {self.max_auto_epochs}")
        _check(self.max_steps is None or self.max_steps > 0, "--max-steps", "must be > 0")
        _check(self.batch_size > 0, "--batch-size", f"must be > 0, got {self.batch_size}")
        _check(self.grad_accum > 0, "--grad-accum", f"must be > 0, got {self.grad_accum}")
        _check(self.lr > 0, "--lr", f"must be > 0, got {self.lr}")
        _check(self.head_lr is None or self.head_lr > 0, "--head-lr",
               f"must be > 0, got {self.head_lr}")
        _check(0 <= self.warmup < 1, "--warmup", f"is a fraction in [0, 1), got {self.warmup}")
        _check(self.max_grad_norm >= 0, "--max-grad-norm", "must be >= 0")
        _check(self.eval_every >= 0, "--eval-every", "must be >= 0")
        _check(self.save_every >= 0, "--save-every", "must be >= 0")
        _check(self.patience >= 0, "--patience", "must be >= 0")
        _check(self.threads is None or self.threads > 0, "--threads", "must be > 0")


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
        _check_choices(self)
        _check(self.limit is None or self.limit > 0, "--limit", "must be > 0")
        unknown = sorted(set(self.columns) - set(ROLES))
        _check(not unknown, "--columns",
               f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")


TEACHER_HEAD_LR = 2e-2
"""A fine-tuning's fresh head: the packaged MiniLM's pooled output is small (std 0.07
against 0.4 for its [CLS] state), so at the encoder's lr its new head barely moves in a
short run. Measured at 2.3 epochs: trec-50's teacher 54.8 -> 91.3 % test, WNUT's entity F1
0.378 -> 0.479, Rotten Tomatoes unchanged (81.3 / 81.1 %); the benchmark store's teacher rows, `head lr/*`."""


@dataclass
class FinetuneConfig:
    """Fine-tune a BERT checkpoint with a task head into a teacher."""

    model: str = "minilm-l6"
    """Starting checkpoint: packaged name, local model directory, or hub id."""
    out: str = "runs/teacher"
    """Artifact directory to write (must not exist, or be an unfinished run to resume)."""
    max_length: int = 128
    """Tokens per example; longer texts are truncated and counted."""
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(head_lr=TEACHER_HEAD_LR))

    def __post_init__(self):
        _check(8 <= self.max_length <= 4096, "--max-length",
               f"must be between 8 and 4096, got {self.max_length}")


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
        _check(self.temperature > 0, "--temperature", f"must be > 0, got {self.temperature}")
        for name in ("kl", "ce", "cos", "hidden_mse", "attn_mse"):
            _check(getattr(self, name) >= 0, f"--{name.replace('_', '-')}", "must be >= 0")
        _check(any(getattr(self, n) for n in ("kl", "ce", "cos", "hidden_mse", "attn_mse")),
               "--kl/--ce/--cos/--hidden-mse/--attn-mse", "at least one weight must be > 0")


@dataclass
class DistillConfig:
    """Distil a fine-tuned teacher into a smaller student on the teacher's task."""

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
        _check(self.augment >= 0, "--augment", "must be >= 0")
        _check(not (self.corpus and (self.augment or self.augment_file)), "--corpus",
               "general distillation takes no --augment options")
        if self.layers is not None:
            _check(len(self.layers) > 0, "--layers", "give at least one layer")
            _check(len(set(self.layers)) == len(self.layers), "--layers",
                   f"layers repeat: {self.layers}")
            _check(all(i >= 0 for i in self.layers), "--layers", "layers count from 0")
        for name in ("hidden_size", "heads", "ffn"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"--{name.replace('_', '-')}", "must be > 0")
        _check(not (self.student and self.corpus), "--student",
               "is for task distillation after general distillation; drop --corpus")
        _check(not (self.student and (self.layers or self.narrow)), "--student",
               "starts from that model's own layers and sizes: drop --layers and the width "
               "options")

    @property
    def narrow(self) -> bool:
        return any(v is not None for v in (self.hidden_size, self.heads, self.ffn))


@dataclass
class TrimVocabConfig:
    """Trim a model's vocabulary to the WordPiece tokens its domain uses."""

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
        _check(self.max_drop is None or self.max_drop >= 0, "--max-drop", "must be >= 0")
        _check(self.min_count >= 1, "--min-count", f"must be >= 1, got {self.min_count}")
        bad = [s for s in self.splits if s not in ("train", "dev", "test")]
        _check(not bad, "--splits", f"unknown split(s) {bad}; use train, dev, test")


@dataclass
class ExportConfig:
    """Export a model artifact to a deployable format, checked against its parent."""

    model: str = "runs/student"
    """Model artifact to export (a transformers directory written by a stage)."""
    out: str = "runs/onnx"
    """Artifact directory to write."""
    format: ExportFormat = "onnx"
    """onnx (dynamic batch and sequence axes), ort (ONNX Runtime Mobile), openvino (IR:
    model.xml + model.bin, run by OpenVINO), executorch (model.pte, delegated to XNNPACK:
    PyTorch's phone runtime), or torchscript."""
    precision: ExportPrecision = "auto"
    """openvino: the precision it runs in, recorded in stage.json and used wherever it
    runs. auto: bf16 on CPUs with AMX-BF16 or AVX512-BF16 (the MiniLM teacher 3x faster
    than in fp32 with AMX, same test accuracy), fp32 elsewhere; bf16 only where this CPU
    runs it (the export is checked in the precision it records). executorch: fp32 (auto),
    or int8 (PT2E static quantization for XNNPACK, per-channel weights, calibrated on
    training texts, kept within --max-drop dev points of the parent)."""
    opset: int = 17
    """ONNX opset."""
    max_abs_diff: float | None = None
    """Largest |delta logits| against the parent on dev examples before refusing [default:
    1e-3 in fp32, 0.25 in bf16 (8 bits of mantissa); an ExecuTorch int8 program, 0.05
    against its PT2E reference]."""
    min_agreement: float | None = None
    """Smallest top-1 agreement with the parent on dev examples before refusing [default:
    0.999 in fp32, 0.99 in bf16]."""
    with_tokenizer: bool = False
    """onnx / ort only: put the WordPiece tokenizer in the graph (onnxruntime-extensions)
    and a softmax and label lookup after it: strings in, labels and scores out."""
    max_drop: float = 1.0
    """--precision int8 only: the accuracy budget, the largest drop of the dev metric (in
    points) against the parent; layers that lose most stay in FP32 until it fits."""

    def __post_init__(self):
        _check_choices(self)
        _check(not self.with_tokenizer or self.format in ("onnx", "ort"), "--with-tokenizer",
               f"is for --format onnx or ort, not {self.format}")
        precisions = {"openvino": ("auto", "fp32", "bf16"), "executorch": ("auto", "fp32", "int8")}
        _check(self.precision in precisions.get(self.format, ("auto",)), "--precision",
               "is for --format " + " or ".join(f"{f} ({', '.join(p[1:])})"
                                                for f, p in precisions.items())
               + f", not {self.precision} with --format {self.format}")
        _check(self.max_drop >= 0, "--max-drop", "must be >= 0 (points)")
        _check(11 <= self.opset <= 21, "--opset", f"must be 11..21, got {self.opset}")
        _check(self.max_abs_diff is None or self.max_abs_diff > 0, "--max-abs-diff",
               "must be > 0")
        _check(self.min_agreement is None or 0 <= self.min_agreement <= 1, "--min-agreement",
               "is a fraction in [0, 1]")


@dataclass
class QuantizeConfig:
    """INT8 with ONNX Runtime for one target, guarded against accuracy loss."""

    model: str = "runs/student"
    """Model artifact: a transformers directory, or an ONNX export of one."""
    out: str = "runs/int8"
    """Artifact directory to write."""
    target: str = "x86-vnni"
    """x86-avx2 (reduce_range), x86-vnni, arm64 (S8S8 when static), or openvino-int8 (NNCF);
    see `edgebert quantize --help`."""
    mode: QuantMode = "dynamic"
    """dynamic (INT8 weights, activations quantized at run time) or static (QDQ, calibrated)."""
    calibration: Calibration = "minmax"
    """Static mode: minmax, entropy or percentile."""
    calibration_examples: int = 256
    """Static mode: training examples used to calibrate activation ranges."""
    max_drop: float = 1.0
    """Accuracy budget: largest drop of the dev metric (in points) against FP32 ONNX."""
    fuse: bool = True
    """Apply ONNX Runtime's BERT fusions (Attention, SkipLayerNorm, BiasGelu) first."""
    embedding_bits: int = 8
    """Bits per value of the word-embedding table, most of a small INT8 model's file: 8; 4
    (a scale and zero point per 64 values of a row, ORT's GatherBlockQuantized: half the
    8-bit table); 2 (product quantization: a byte per 4 values, indexing k-means
    codebooks; a quarter), falling back to 4 where 2 takes the model past --max-drop; or 1
    (a byte per 8 values, an eighth; from a PyTorch model its codebooks are then trained to
    keep the model's outputs, a few minutes), falling back to 2, then 4. --engine ort; the
    table stays at 8 bits (or FP32) where none fits the budget (metrics.json's
    embedding_lowbit says what was tried and kept)."""
    embedding_max_drop: float | None = None
    """The most dev points the word-table step may cost by itself (against the model with
    the table as it was): a try that costs more goes on to the next bits of the ladder,
    even where the model stays within --max-drop. A table that costs dev points costs more
    on test where dev is small (vader-amazon, 369 dev snippets: the 1-bit table cost
    0.52-0.98 dev points and 0.90-1.39 test points in two runs, 2 bits 0.17 dev and nothing
    on test; the benchmark store's heads rows). None: --max-drop alone."""
    engine: Engine = "ort"
    """ort (ONNX Runtime + our per-node guard: INT8 ONNX) or inc (Intel Neural Compressor's
    accuracy-driven tuning: INT8 PyTorch, model.pt2, x86 only; slower than ONNX Runtime's
    INT8 on the CPUs measured: the benchmark store's int8_inc rows)."""
    same_graph_as: str | None = None
    """A finished INT8 artifact of the same model, made with these options for another
    target whose ONNX Runtime settings give the same graph (dynamic INT8 for x86-vnni and
    arm64): its graph and scores are taken, and only this target's own check runs (arm64:
    aarch64 under emulation). compress passes it; it saves a second guard and word-table
    search."""

    def __post_init__(self):
        _check_choices(self)
        _check(self.calibration_examples > 0, "--calibration-examples", "must be > 0")
        _check(self.max_drop >= 0, "--max-drop", f"must be >= 0, got {self.max_drop}")
        _check(self.embedding_max_drop is None or self.embedding_max_drop >= 0,
               "--embedding-max-drop", f"must be >= 0, got {self.embedding_max_drop}")
        _check(self.embedding_bits in (1, 2, 4, 8), "--embedding-bits",
               f"must be 8, 4, 2 or 1, got {self.embedding_bits}")
        _check(self.embedding_bits == 8 or self.engine == "ort", "--embedding-bits",
               f"{self.embedding_bits} needs --engine ort (it rewrites ONNX Runtime's fused "
               f"embedding)")


@dataclass
class PruneConfig:
    """Prune a model artifact, structured and/or unstructured, then recover."""

    model: str = "runs/student"
    """Model artifact to prune (a transformers directory written by a stage)."""
    out: str = "runs/pruned"
    """Artifact directory to write."""
    heads: float = 0.0
    """Attention heads to remove: a fraction (< 1) or a count, per layer or global (--scope)."""
    ffn: float = 0.0
    """FFN neurons to remove in every layer: a fraction (< 1) or a count."""
    drop_layers: list[int] = field(default_factory=list)
    """Whole encoder layers to remove, e.g. [1]."""
    scope: Scope = "layer"
    """Head ranking: layer (the same count removed in each layer; keeps ONNX fusions) or
    global (the least important anywhere; layers end up with different head counts)."""
    sparsity: float = 0.0
    """Unstructured: fraction of encoder weights set to zero by magnitude (e.g. 0.8)."""
    sparsity_scope: Scope = "global"
    """Magnitude threshold: global (one over all encoder matrices) or layer (one per matrix)."""
    importance_batches: int = 32
    """Training batches used to rank heads and FFN neurons."""
    recover: Recover = "finetune"
    """After pruning: none, finetune (hard labels) or distill (from --teacher)."""
    teacher: str | None = None
    """Teacher artifact for --recover distill."""
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2.0, lr=1e-4))

    def __post_init__(self):
        _check_choices(self)
        for option, value in (("--heads", self.heads), ("--ffn", self.ffn)):
            _check(value >= 0 and (value < 1 or float(value).is_integer()), option,
                   f"is a fraction below 1 or a whole count, got {value:g}")
        _check(0 <= self.sparsity < 1, "--sparsity", f"is a fraction in [0, 1), got {self.sparsity}")
        _check(self.recover != "distill" or bool(self.teacher), "--teacher",
               "--recover distill needs --teacher")
        _check(self.importance_batches > 0, "--importance-batches", "must be > 0")
        _check(bool(self.heads or self.ffn or self.drop_layers or self.sparsity),
               "--heads/--ffn/--drop-layers/--sparsity", "nothing to prune: set at least one")


@dataclass
class BundleConfig:
    """Write a deployment bundle that `edgebert.runtime` loads without torch."""

    model: str
    """Artifact to ship: INT8 or FP32 ONNX, ORT format, or a PyTorch directory (exported to
    FP32 ONNX on the way)."""
    out: str
    """Bundle directory to write (must not exist)."""


@dataclass
class LearnedPruneConfig:
    """Learn which layers, heads and FFN neurons to remove (CoFi's L0 masks, trained against
    the teacher to a target size), cut them, then recover."""

    model: str = "runs/teacher"
    """Model artifact to prune: the teacher, or any model of the chain (a student)."""
    out: str = "runs/learned"
    """Artifact directory to write."""
    teacher: str = "runs/teacher"
    """Teacher artifact whose logits and hidden states the masked model learns."""
    sparsity: float = 0.6
    """Target: fraction of the encoder's attention-head and FFN-neuron parameters to remove
    (CoFi's measure: embeddings, LayerNorms and the task head are not counted)."""
    mask_steps: float = 0.5
    """Share of the mask phase's steps over which the target rises linearly from 0 (CoFi's
    Lagrangian warm-up); the rest trains at the target."""
    mask_lr: float = 0.01
    """Peak learning rate of the masks' log-alphas and of the Lagrange multipliers (CoFi's
    reg_learning_rate), under the same warm-up and decay as --lr."""
    layer_distill: float = 1.0
    """Weight of the hidden-state MSE between a set of teacher layers and the student
    layers each one matches best (CoFi's dynamic layer matching); 0 turns it off."""
    distill_layers: list[int] = field(default_factory=list)
    """Teacher layers (1-based) matched to student layers (default: 4 evenly spaced,
    the last one included)."""
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    """The prediction terms of both phases (soft targets, hard labels); recovery uses
    these alone."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=5.0, lr=5e-5))
    """The mask phase's training (CoFi trained 20 epochs on small tasks; this default is a
    shorter guess, not yet measured on the packaged tasks)."""
    recover_epochs: float = 1.0
    """Epochs of distillation after the cut, without masks (0: none); its other settings
    are --lr and the rest of the mask phase's."""

    def __post_init__(self):
        _check(0 < self.sparsity < 1, "--sparsity", f"is a fraction in (0, 1), got {self.sparsity}")
        _check(0 < self.mask_steps <= 1, "--mask-steps", f"is a fraction in (0, 1], got "
               f"{self.mask_steps}")
        _check(self.mask_lr > 0, "--mask-lr", f"must be > 0, got {self.mask_lr}")
        _check(self.layer_distill >= 0, "--layer-distill", "must be >= 0")
        _check(all(i >= 1 for i in self.distill_layers), "--distill-layers",
               f"teacher layers count from 1, got {self.distill_layers}")
        _check(self.recover_epochs >= 0, "--recover-epochs", "must be >= 0")
        _check(not (self.loss.cos or self.loss.hidden_mse or self.loss.attn_mse),
               "--cos/--hidden-mse/--attn-mse", "prune-learned matches hidden states by its "
               "own dynamic layer map: use --layer-distill")
        _check(bool(self.loss.kl or self.loss.ce), "--kl/--ce",
               "the prediction loss needs one of them > 0")


@dataclass
class BenchConfig:
    """Latency of artifacts, interleaved: each turn runs one artifact in a fresh process at
    fixed threads, after warm-up, so artifacts share the machine's noise but never a thread
    pool."""

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
            _check(bool(values) and all(v > 0 for v in values), option,
                   f"expected positive numbers like 1,8, got {values}")
        _check(self.threads > 0, "--threads", f"must be > 0, got {self.threads}")
        _check(self.warmup >= 0, "--warmup", f"must be >= 0, got {self.warmup}")
        _check(self.runs > 0, "--runs", f"must be > 0, got {self.runs}")
        _check(self.rounds > 0, "--rounds", f"must be > 0, got {self.rounds}")


@dataclass
class TokenizerConfig:
    """Train a WordPiece vocabulary with BERT normalisation and special tokens, or a
    byte-level BPE one as RoBERTa's."""

    corpus: str = "corpus"
    """Text file or directory of .txt files (`edgebert corpus build` makes one)."""
    out: str = "tok"
    """Tokenizer directory to write (AutoTokenizer opens it)."""
    vocab_size: int = 8000
    """Tokens in the vocabulary, special tokens included."""
    lowercase: bool = True
    """Lowercase the text first (an uncased vocabulary)."""
    strip_accents: bool = True
    """Strip accents (e.g. é to e); wordpiece only."""
    min_frequency: int = 2
    """Pieces seen fewer times are not added."""
    kind: TokenizerKind = "wordpiece"
    """wordpiece: BERT's ([CLS] and [SEP], '##' pieces); bpe: RoBERTa's byte-level BPE (`<s>`
    and `</s>`, no unknown characters; --strip-accents does not apply)."""

    def __post_init__(self):
        _check_choices(self)
        _check(self.min_frequency >= 1, "--min-frequency",
               f"must be >= 1, got {self.min_frequency}")


MODEL_PRESETS = ("tiny", "bert-small", "bert-base")


@dataclass
class PretrainConfig:
    """Pretrain a BERT with MLM (+ NSP) on a plain-text corpus."""

    corpus: str = "corpus"
    """Text file or directory of .txt files: one sentence per line, a blank line between
    documents (`edgebert corpus build` makes one)."""
    tokenizer: str | None = None
    """Tokenizer directory (`edgebert tokenizer train`); default: the --init model's own."""
    config: str = "tiny"
    """Model shape: tiny (2 layers, 128 wide), bert-small (4 x 512), bert-base (12 x 768), or
    a config.json. Ignored with --init."""
    init: str | None = None
    """Continue pretraining this encoder (packaged, local or hub): MLM/NSP heads start fresh,
    the output embedding tied to the input one."""
    out: str = "runs/pretrained"
    """Artifact directory to write."""
    arch: Arch = "bert"
    """The model and its objective: bert (MLM + next-sentence prediction), roberta (MLM
    alone on single segments, one token type), albert (MLM + sentence-order prediction,
    one shared layer, 128-wide factorized embeddings). From scratch only: --init keeps
    the encoder's own."""
    max_length: int = 128
    """Tokens per packed example ([CLS] A [SEP] B [SEP])."""
    nsp: bool = True
    """BERT's next-sentence prediction (50 % IsNext); --no-nsp packs single segments
    (RoBERTa style). Ignored by the other archs, which have their own objective."""
    whole_word: bool = False
    """Whole-word masking: all WordPiece pieces of a chosen word are masked together."""
    dynamic_masking: bool = True
    """A fresh mask each time an example is drawn; --no-dynamic-masking draws it once."""
    freeze_encoder: bool = False
    """Train the MLM (and NSP / SOP) heads alone, the encoder's weights kept as they are:
    a first pass for an --init encoder that has no heads, so the continued pretraining
    that follows (--init this run's output) learns from a head that already predicts
    words instead of a random one. About 3x cheaper a step (no backward through the
    encoder)."""
    heldout: float = 0.02
    """Fraction of documents held out for MLM loss / accuracy, NSP accuracy, perplexity."""
    cache: str | None = None
    """Token cache directory (default: $EDGEBERT_CACHE/tokens)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1.0, lr=5e-4,
                                                                     batch_size=32, warmup=0.1))

    def __post_init__(self):
        _check(16 <= self.max_length <= 4096, "--max-length", "must be between 16 and 4096")
        _check(0 < self.heldout < 0.5, "--heldout", "is a fraction in (0, 0.5)")
