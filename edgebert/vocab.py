"""WordPiece vocabularies: building a BERT tokenizer from one, counting the pieces texts
use, and trimming a vocabulary (and a model's embeddings) to those a domain uses.

`wordpiece` builds a BERT fast tokenizer from a vocabulary, the same way under
transformers 4 and 5 (5's `BertTokenizerFast(vocab_file=...)` ignores the file
and maps every word to [UNK]): the tokenizer trainer, trimming and the tests use it.

Trimming: keep the WordPiece tokens a domain uses, shrink the embeddings.

WordPiece matches the longest piece in the vocabulary first. Every piece a
kept text produced is kept, and no longer piece existed before, so every kept
text tokenizes to the same pieces after trimming: its outputs are unchanged.
Text outside the kept set can only lose pieces (to shorter ones or [UNK]).
With a minimum count, pieces the kept texts use rarely go too: texts that used
one split differently (a lossy step for the guard to judge); the others still
tokenize, and so compute, exactly as before.

The single-character pieces (`c` and `##c`) of every character in the kept texts
are kept too: a word of known characters then always splits into pieces and never
falls back to [UNK]. That fallback is where `tokenizers` (one [UNK] for the whole
word) and the onnxruntime-extensions tokenizer (the pieces found so far, then
[UNK]) disagree, so the tokenizer-in-the-graph export needs it; shorter pieces
never change a text that already tokenized, the longest match still wins.
"""

from __future__ import annotations

from collections import Counter

from edgebert.errors import UserError
from edgebert.kinds import kind

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece(vocab: dict[str, int] | list[str], lowercase: bool = True,
              strip_accents: bool | None = None, chinese_chars: bool = True,
              model_max_length: int | None = None):
    """A BERT fast tokenizer over `vocab` (tokens in id order, or token -> id) with BERT's
    normaliser, pre-tokenizer, decoder and [CLS] A [SEP] B [SEP] template."""
    from tokenizers import Tokenizer, models, processors
    from transformers import BertTokenizerFast

    ids = vocab if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
    missing = [t for t in SPECIAL if t not in ids]
    if missing:
        raise UserError(f"the vocabulary lacks the special tokens {missing}")
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    bert_pipeline(tok, lowercase, strip_accents, chinese_chars)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    extra = {"model_max_length": model_max_length} if model_max_length else {}
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase,
                             strip_accents=strip_accents, tokenize_chinese_chars=chinese_chars,
                             unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", **extra)


def bert_pipeline(tok, lowercase: bool, strip_accents: bool | None,
                  chinese_chars: bool = True) -> None:
    """BERT's normaliser, pre-tokenizer and decoder on a `tokenizers.Tokenizer`, in place."""
    from tokenizers import decoders, normalizers, pre_tokenizers

    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese_chars,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")


def texts_of(examples: list, kind_name: str) -> list[str]:
    """The texts a task's examples hold (both sentences of a pair, a question and its
    context), in order."""
    return [text for ex in examples for text in kind(kind_name).texts(ex)]


def piece_counts(tokenizer, texts: list[str]) -> Counter:
    """How many times the texts use each piece id."""
    counts = Counter()
    for start in range(0, len(texts), 1000):
        for row in tokenizer(texts[start:start + 1000], add_special_tokens=False)["input_ids"]:
            counts.update(row)
    return counts


def used_ids(tokenizer, texts: list[str], min_count: int = 1,
             counts: Counter | None = None) -> list[int]:
    """Sorted ids the texts use at least `min_count` times, every special token, and the
    single-character pieces of the texts' characters (after normalisation)."""
    counts = counts if counts is not None else piece_counts(tokenizer, texts)
    ids = set(tokenizer.all_special_ids) | {i for i, n in counts.items() if n >= min_count}
    norm = tokenizer.backend_tokenizer.normalizer
    chars = set().union(*(norm.normalize_str(t) if norm else t for t in texts))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[p] for c in chars for p in (c, "##" + c) if p in vocab)
    return sorted(ids)


def trimmed_tokenizer(tokenizer, keep: list[int]):
    """A BERT fast tokenizer over the kept pieces, with the original's normalisation."""
    from transformers import BertTokenizerFast

    if not isinstance(tokenizer, BertTokenizerFast):
        raise UserError(f"vocabulary trimming supports WordPiece (BERT) tokenizers, not "
                        f"{type(tokenizer).__name__}")
    import json

    inverse = {i: t for t, i in tokenizer.get_vocab().items()}
    norm = tokenizer.backend_tokenizer.normalizer
    settings = json.loads(norm.__getstate__() if norm is not None else b"{}")
    return wordpiece([inverse[i] for i in keep], lowercase=settings.get("lowercase", True),
                     strip_accents=settings.get("strip_accents"),
                     chinese_chars=settings.get("handle_chinese_chars", True),
                     model_max_length=tokenizer.model_max_length)


def trim_embeddings_(model, keep: list[int]) -> None:
    """Keep rows `keep` of the input embeddings (and a tied or untied MLM decoder)."""
    import torch

    index = torch.tensor(keep)
    remap = {old_id: new_id for new_id, old_id in enumerate(keep)}
    embedding = model.get_input_embeddings()
    old = getattr(embedding, "small", embedding)  # a factorized one: its lookup's rows
    pad = remap.get(old.padding_idx) if old.padding_idx is not None else None
    new = torch.nn.Embedding(len(keep), old.embedding_dim, padding_idx=pad)
    new.weight.data = old.weight.data[index].clone()
    if old is embedding:
        model.set_input_embeddings(new)
    else:
        embedding.small = new
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        out.weight = new.weight if model.config.tie_word_embeddings else \
            torch.nn.Parameter(out.weight.data[index].clone())
        if getattr(out, "bias", None) is not None:
            out.bias = torch.nn.Parameter(out.bias.data[index].clone())
    model.config.vocab_size = len(keep)
    if model.config.pad_token_id is not None:
        model.config.pad_token_id = remap[model.config.pad_token_id]


def check_same_tokens(old_tok, new_tok, keep: list[int], texts: list[str]) -> tuple[int, int]:
    """(texts whose pieces changed though every piece they used was kept: 0 for plain
    WordPiece; texts that used a dropped piece and so split differently)."""
    remap = {old_id: new_id for new_id, old_id in enumerate(keep)}
    changed = resplit = 0
    for start in range(0, len(texts), 1000):
        chunk = texts[start:start + 1000]
        for a, b in zip(old_tok(chunk)["input_ids"], new_tok(chunk)["input_ids"]):
            mapped = [remap.get(i, -1) for i in a]
            if -1 in mapped:
                resplit += 1
            else:
                changed += mapped != b
    return changed, resplit
