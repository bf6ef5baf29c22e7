"""The configs of the prune and prune-learned stages: their commands' options and a
recipe's `prune` and `learned_prune` entries derive from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from edgebert.config import DistillLossConfig, TrainConfig, check, check_choices

Scope = Literal["layer", "global"]
Recover = Literal["none", "finetune", "distill"]


@dataclass
class PruneConfig:
    """Prune a model artifact, structured and/or unstructured, then recover."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Prune a model: remove heads, FFN neurons or layers, or zero weights by magnitude.

Structured pruning makes the matrices smaller (and faster on any runtime);
unstructured sparsity only shrinks the compressed file on stock CPU runtimes.
Recovery trains afterwards (shorter than fine-tuning: 2 epochs, lr 1e-4).

\b
Examples:
  edgebert prune --model runs/rt/student --heads 0.5 --ffn 0.5 \\
      --recover distill --teacher runs/rt/teacher --out runs/rt/pruned
  edgebert prune --model runs/rt/student --sparsity 0.8 --out runs/rt/sparse
  edgebert prune --model runs/rt/teacher --drop-layers 1,3 --recover none --out runs/rt/p
"""

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
        check_choices(self)
        for option, value in (("--heads", self.heads), ("--ffn", self.ffn)):
            check(value >= 0 and (value < 1 or float(value).is_integer()), option,
                  f"is a fraction below 1 or a whole count, got {value:g}")
        check(0 <= self.sparsity < 1, "--sparsity", f"is a fraction in [0, 1), got {self.sparsity}")
        check(self.recover != "distill" or bool(self.teacher), "--teacher",
              "--recover distill needs --teacher")
        check(self.importance_batches > 0, "--importance-batches", "must be > 0")
        check(bool(self.heads or self.ffn or self.drop_layers or self.sparsity),
              "--heads/--ffn/--drop-layers/--sparsity", "nothing to prune: set at least one")


@dataclass
class LearnedPruneConfig:
    """Learn which layers, heads and FFN neurons to remove (CoFi's L0 masks, trained against
    the teacher to a target size), cut them, then recover."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
Learn what to cut to a target size, cut it, recover (CoFi's L0 masks).

Masks over whole layers, attention blocks, heads, FFN blocks and FFN neurons train with
the model against the teacher (its logits, and hidden states matched layer to layer),
a Lagrangian holding their expected size to --sparsity; then the model is cut and
distilled again without masks. Starts from the teacher or any model of a chain.

\b
Example:
  edgebert prune-learned --model runs/rt/teacher --teacher runs/rt/teacher \\
      --sparsity 0.6 --out runs/rt/learned
"""

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
    shorter one: on trec-50 it held the masks' expected sparsity at 20 % against a 30 %
    target, docs/guides/learned-pruning.md)."""
    recover_epochs: float = 1.0
    """Epochs of distillation after the cut, without masks (0: none); its other settings
    are --lr and the rest of the mask phase's."""

    def __post_init__(self):
        check(0 < self.sparsity < 1, "--sparsity", f"is a fraction in (0, 1), got {self.sparsity}")
        check(0 < self.mask_steps <= 1, "--mask-steps", f"is a fraction in (0, 1], got "
              f"{self.mask_steps}")
        check(self.mask_lr > 0, "--mask-lr", f"must be > 0, got {self.mask_lr}")
        check(self.layer_distill >= 0, "--layer-distill", "must be >= 0")
        check(all(i >= 1 for i in self.distill_layers), "--distill-layers",
              f"teacher layers count from 1, got {self.distill_layers}")
        check(self.recover_epochs >= 0, "--recover-epochs", "must be >= 0")
        check(not (self.loss.cos or self.loss.hidden_mse or self.loss.attn_mse),
              "--cos/--hidden-mse/--attn-mse", "prune-learned matches hidden states by its "
              "own dynamic layer map: use --layer-distill")
        check(bool(self.loss.kl or self.loss.ce), "--kl/--ce",
              "the prediction loss needs one of them > 0")
