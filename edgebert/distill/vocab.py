"""Vocabulary trimming: keep the WordPiece tokens a domain uses, shrink the embeddings.

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

import torch

from edgebert.errors import UserError


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

    from edgebert.pretrain.tokenizer import wordpiece

    inverse = {i: t for t, i in tokenizer.get_vocab().items()}
    norm = tokenizer.backend_tokenizer.normalizer
    settings = json.loads(norm.__getstate__() if norm is not None else b"{}")
    return wordpiece([inverse[i] for i in keep], lowercase=settings.get("lowercase", True),
                     strip_accents=settings.get("strip_accents"),
                     chinese_chars=settings.get("handle_chinese_chars", True),
                     model_max_length=tokenizer.model_max_length)


def trim_embeddings_(model, keep: list[int]) -> None:
    """Keep rows `keep` of the input embeddings (and a tied or untied MLM decoder)."""
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
