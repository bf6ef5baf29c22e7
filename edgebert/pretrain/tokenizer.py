"""`edgebert tokenizer train`: a WordPiece vocabulary from a corpus, with `tokenizers`.

BERT's normaliser (lowercasing and accent stripping as options), its
pre-tokenizer, the special tokens [PAD] [UNK] [CLS] [SEP] [MASK], and the
[CLS] A [SEP] B [SEP] template; saved as a `BertTokenizerFast` so
`transformers.AutoTokenizer.from_pretrained(out)` opens it.
"""

from __future__ import annotations

from pathlib import Path

from edgebert.errors import UserError
from edgebert.pretrain.corpus import corpus_files

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(corpus: Path, out: Path, vocab_size: int = 8000, lowercase: bool = True,
                    strip_accents: bool = True, min_frequency: int = 2, log=print) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertTokenizerFast

    if vocab_size < len(SPECIAL) + 100:
        raise UserError(f"--vocab-size: {vocab_size} is too small; use at least 1000")
    files = [str(f) for f in corpus_files(corpus)]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.train(files, WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIAL, continuing_subword_prefix="##",
                                      show_progress=True))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    out.mkdir(parents=True, exist_ok=True)
    fast = BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase,
                             strip_accents=strip_accents, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    fast.save_pretrained(str(out))
    log(f"WordPiece vocabulary of {tok.get_vocab_size()} tokens from {len(files)} file(s) "
        f"-> {out}")
    return out
