"""The configs of the pretrain stage and of the tokenizer it trains with: the options of
`edgebert pretrain` and `edgebert tokenizer train`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from edgebert.config import TrainConfig, check, check_choices

Arch = Literal["bert", "roberta", "albert"]
TokenizerKind = Literal["wordpiece", "bpe"]


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
        check_choices(self)
        check(self.min_frequency >= 1, "--min-frequency",
              f"must be >= 1, got {self.min_frequency}")


MODEL_PRESETS = ("tiny", "bert-small", "bert-base")


@dataclass
class PretrainConfig:
    """Pretrain a BERT with MLM (+ NSP) on a plain-text corpus."""

    # the command's --help (the options' help is each field's docstring)
    HELP: ClassVar[str] = """\
MLM + NSP pretraining of a BERT (from scratch, or continued from an encoder).

On a GPU: bf16 autocast and SDPA attention; several GPUs or nodes with
torchrun (each rank reads its own slice of every batch; rank 0 writes).
A killed run resumes with the same command.

\b
Examples:
  edgebert pretrain --corpus corpus/ --tokenizer tok/ --config tiny --out runs/x/pretrained
  edgebert pretrain --corpus corpus/ --init minilm-l6 --no-nsp --out runs/x/continued
  torchrun --nproc-per-node 8 -m edgebert.cli pretrain --corpus corpus/ --tokenizer tok/ \\
      --config bert-base --out runs/x/base
  edgebert finetune --model runs/x/pretrained --task rotten-tomatoes --out runs/x/teacher
"""

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
        check(16 <= self.max_length <= 4096, "--max-length", "must be between 16 and 4096")
        check(0 < self.heldout < 0.5, "--heldout", "is a fraction in (0, 0.5)")
