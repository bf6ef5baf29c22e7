"""`edgebert tokenizer train`: a WordPiece (BERT) or byte-level BPE (RoBERTa) vocabulary
from a corpus, with `tokenizers`.

BERT's normaliser (lowercasing and accent stripping as options), its
pre-tokenizer, the special tokens [PAD] [UNK] [CLS] [SEP] [MASK], and the
[CLS] A [SEP] B [SEP] template; saved as a `BertTokenizerFast` so
`transformers.AutoTokenizer.from_pretrained(out)` opens it.

The tokenizer is built from the trained vocabulary by `edgebert.vocab.wordpiece`,
which vocabulary trimming and the tests use too.
"""

from __future__ import annotations

from pathlib import Path

from edgebert.errors import UserError
from edgebert.modeling import save_tokenizer
from edgebert.stages.pretrain.corpus import corpus_files
from edgebert.vocab import SPECIAL, bert_pipeline, wordpiece


def train_tokenizer(corpus: Path, out: Path, vocab_size: int = 8000, lowercase: bool = True,
                    strip_accents: bool = True, min_frequency: int = 2, kind: str = "wordpiece",
                    log=print) -> Path:
    from tokenizers import Tokenizer, models
    from tokenizers.trainers import WordPieceTrainer

    if vocab_size < len(SPECIAL) + 100:
        raise UserError(f"--vocab-size: {vocab_size} is too small; use at least 1000")
    files = [str(f) for f in corpus_files(corpus)]
    if kind == "bpe":
        return _train_bpe(files, out, vocab_size, lowercase, min_frequency, log)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    bert_pipeline(tok, lowercase, strip_accents)
    tok.train(files, WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIAL, continuing_subword_prefix="##",
                                      show_progress=True))
    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(wordpiece(tok.get_vocab(), lowercase=lowercase, strip_accents=strip_accents),
                   out)
    log(f"WordPiece vocabulary of {tok.get_vocab_size()} tokens from {len(files)} file(s) "
        f"-> {out}")
    return out


BPE_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _train_bpe(files: list[str], out: Path, vocab_size: int, lowercase: bool,
               min_frequency: int, log) -> Path:
    """RoBERTa's tokenizer: byte-level BPE (no unknown characters, no accent stripping),
    <s> A </s></s> B </s>, saved as a `RobertaTokenizerFast`."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer(lowercase=lowercase)
    bpe.train(files, vocab_size=vocab_size, min_frequency=min_frequency,
              special_tokens=BPE_SPECIAL, show_progress=True)
    ids = bpe.get_vocab()
    bpe._tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", ids["</s>"]), ("<s>", ids["<s>"]))
    tok = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                               eos_token="</s>", sep_token="</s>", cls_token="<s>",
                               unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out)
    log(f"byte-level BPE vocabulary of {bpe.get_vocab_size()} tokens from {len(files)} "
        f"file(s) -> {out}")
    return out
