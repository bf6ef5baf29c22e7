"""Pretraining examples: a token cache, NSP pairs packed to the maximum length, MLM masks.

The cache holds the corpus tokenised once (no special tokens), memory-mapped:
    tokens.bin   int32, every sentence's ids back to back
    sents.npy    int64 sentence start offsets into tokens (+ the end)
    docs.npy     int64 first sentence index of each document (+ the end)
so epochs after the first, and every later run on the same corpus and
tokenizer, do no tokenising.

Pairs follow BERT: sentences of a document are gathered up to the target
length; A is a random prefix of them, B the rest (IsNext) or, half the time,
sentences from another document (NotNext, never the same document).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch

from edgebert.data.masking import mask_tokens
from edgebert.stages.pretrain.corpus import corpus_files, documents


def cache_key(corpus: Path, tokenizer) -> str:
    h = hashlib.sha256()
    for f in corpus_files(corpus):
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    return h.hexdigest()[:16]


def tokenize_corpus(corpus: Path, tokenizer, cache_root: Path, log=print) -> Path:
    """Tokenise `corpus` once into `cache_root/<key>/` (reused when it exists).

    Each process writes its own `<key>.partial-<pid>` and renames it into place when done:
    several processes may tokenise the same corpus at once (torchrun's ranks, two runs
    sharing a cache), and one renaming a shared partial directory under another's writes
    failed that one. The first to finish wins; the others drop their copy and read it."""
    import os
    import shutil

    from tqdm.auto import tqdm

    out = cache_root / cache_key(corpus, tokenizer)
    if (out / "docs.npy").exists():
        return out
    part = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)  # a dead process's, with this pid
    part.mkdir(parents=True)
    sents, docs, n_tokens, batch = [0], [0], 0, []
    with open(part / "tokens.bin", "wb") as fh:
        def flush():
            nonlocal n_tokens
            enc = tokenizer(batch, add_special_tokens=False)["input_ids"]
            for ids in enc:
                np.asarray(ids, dtype=np.int32).tofile(fh)
                n_tokens += len(ids)
                sents.append(n_tokens)
            batch.clear()

        for doc in tqdm(documents(corpus), desc="tokenising", unit="doc", mininterval=5):
            batch.extend(doc)
            if len(batch) > 4096:
                flush()
            docs.append(len(sents) - 1 + len(batch))
        flush()
    np.save(part / "sents.npy", np.asarray(sents, dtype=np.int64))
    np.save(part / "docs.npy", np.asarray(docs, dtype=np.int64))
    try:
        part.rename(out)
    except OSError:  # another process finished first: its cache is the same
        if not (out / "docs.npy").exists():
            raise
        shutil.rmtree(part, ignore_errors=True)
    log(f"tokenised {len(docs) - 1} documents, {len(sents) - 1} sentences, {n_tokens} tokens "
        f"-> {out}")
    return out


class Corpus:
    """The memory-mapped cache: sentence i is tokens[sents[i]:sents[i+1]]."""

    def __init__(self, cache: Path):
        self.tokens = np.memmap(cache / "tokens.bin", dtype=np.int32, mode="r")
        self.sents = np.load(cache / "sents.npy")
        self.docs = np.load(cache / "docs.npy")

    def __len__(self) -> int:
        return len(self.docs) - 1

    def doc(self, d: int) -> list[np.ndarray]:
        return [self.tokens[self.sents[i]:self.sents[i + 1]]
                for i in range(self.docs[d], self.docs[d + 1])]


def make_pairs(corpus: Corpus, doc_ids: list[int], max_length: int, objective: str,
               seed: int, cls_id: int, sep_id: int, short_seq_prob: float = 0.1) -> list[dict]:
    """Instances packed from consecutive sentences of one document: `[CLS] A [SEP] B
    [SEP]` with a next-sentence label (objective "nsp", BERT: B follows A or comes from
    another document) or a sentence-order label ("sop", ALBERT: A and B in order or
    swapped), or `[CLS] A [SEP]` ("none", RoBERTa)."""
    rng = random.Random(seed)
    budget = max_length - (2 if objective == "none" else 3)
    out = []
    for d in doc_ids:
        sentences = corpus.doc(d)
        target = rng.randint(2, budget) if rng.random() < short_seq_prob else budget
        chunk, length, i = [], 0, 0
        while i < len(sentences):
            chunk.append(sentences[i])
            length += len(sentences[i])
            if i == len(sentences) - 1 or length >= target:
                if objective == "none":
                    a = np.concatenate(chunk)[:budget]
                    out.append(_instance(a, None, None, cls_id, sep_id))
                elif objective == "sop":
                    pair = _ordered_pair(chunk, budget, rng)
                    if pair:
                        a, b = pair
                        swapped = rng.random() < 0.5
                        out.append(_instance(b, a, None, cls_id, sep_id) if swapped else
                                   _instance(a, b, None, cls_id, sep_id))
                        out[-1]["sentence_order_label"] = int(swapped)  # HF: 1 = swapped
                else:
                    cut = rng.randint(1, len(chunk) - 1) if len(chunk) > 1 else 1
                    a = list(chunk[:cut])
                    if len(chunk) == 1 or rng.random() < 0.5:
                        is_next, other = 0, d
                        while other == d and len(corpus) > 1:
                            other = rng.randrange(len(corpus))
                        o = corpus.doc(other)
                        start = rng.randrange(len(o))
                        b = o[start:]
                        i -= len(chunk) - cut  # the unused sentences go back (as BERT does)
                    else:
                        is_next, b, other = 1, chunk[cut:], d
                    a, b = _truncate(np.concatenate(a), np.concatenate(b), budget, rng)
                    out.append(_instance(a, b, is_next, cls_id, sep_id) | {"doc_b": other,
                                                                           "doc_a": d})
                chunk, length = [], 0
                target = rng.randint(2, budget) if rng.random() < short_seq_prob else budget
            i += 1
    return _balance(out, rng) if objective == "nsp" else out


def _ordered_pair(chunk: list[np.ndarray], budget: int, rng: random.Random):
    """Two consecutive segments of a chunk: cut between sentences, or inside the one
    sentence of a one-sentence chunk; None when it has fewer than two tokens."""
    if len(chunk) > 1:
        cut = rng.randint(1, len(chunk) - 1)
        a, b = np.concatenate(chunk[:cut]), np.concatenate(chunk[cut:])
    else:
        tokens = chunk[0]
        if len(tokens) < 2:
            return None
        cut = rng.randint(1, len(tokens) - 1)
        a, b = tokens[:cut], tokens[cut:]
    return _truncate(a, b, budget, rng)


def _balance(instances: list[dict], rng: random.Random) -> list[dict]:
    """As many NotNext as IsNext pairs. A one-sentence chunk can only make a NotNext
    pair, so on short documents (glosses, fortunes) BERT's recipe skews the labels;
    dropping surplus NotNext pairs keeps NSP accuracy against a 50 % baseline."""
    pos = [i for i, x in enumerate(instances) if x["next_sentence_label"] == 0]
    neg = [i for i, x in enumerate(instances) if x["next_sentence_label"] == 1]
    if len(neg) > len(pos):
        neg = rng.sample(neg, len(pos))
    return [instances[i] for i in sorted(pos + neg)]


def _truncate(a: np.ndarray, b: np.ndarray, budget: int, rng: random.Random):
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]
    return a, b


def _instance(a, b, is_next, cls_id, sep_id) -> dict:
    ids = [cls_id, *a, sep_id] + ([*b, sep_id] if b is not None else [])
    types = [0] * (len(a) + 2) + ([1] * (len(b) + 1) if b is not None else [])
    inst = {"input_ids": ids, "token_type_ids": types}
    if is_next is not None:
        inst["next_sentence_label"] = 1 - is_next  # HF: 0 = B follows A, 1 = B is random
    return inst


PAIR_LABELS = ("next_sentence_label", "sentence_order_label")
"""The pair objectives' labels: NSP (BERT), sentence order (ALBERT)."""


def word_starts(tokenizer) -> torch.Tensor:
    """True for vocabulary entries that start a word (not '##' continuations)."""
    vocab = tokenizer.get_vocab()
    table = torch.ones(max(vocab.values()) + 1, dtype=torch.bool)
    for token, i in vocab.items():
        if token.startswith("##"):
            table[i] = False
    return table


def mask_whole_words(ids: torch.Tensor, special: torch.Tensor, starts: torch.Tensor,
                     mask_id: int, vocab_size: int, prob: float = 0.15):
    """Whole-word masking: choose words, then corrupt every piece of a chosen word."""
    is_start = starts[ids] | special
    word = torch.cumsum(is_start.long(), dim=1)  # word index per position, per row
    chosen_word = torch.rand(ids.shape) < prob  # one draw per word index (by position)
    pick = torch.gather(chosen_word, 1, (word - 1).clamp(min=0)) & ~special
    # every picked position is "chosen" (prob 1 outside the excluded ones); 80/10/10 applies
    return mask_tokens(ids, ~pick | special, mask_id, vocab_size, prob=1.0)


def collate_pretrain(features: list[dict], pad_id: int, mask_id: int, vocab_size: int,
                     special_ids: list[int], whole_word: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> dict:
    """Pad, then mask afresh (dynamic masking: a new mask every time a batch is drawn)."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    for i, f in enumerate(features):
        ids[i, :len(f["input_ids"])] = torch.tensor(f["input_ids"])
        types[i, :len(f["token_type_ids"])] = torch.tensor(f["token_type_ids"])
    attention = (ids != pad_id).long()
    special = torch.isin(ids, torch.tensor(special_ids + [pad_id]))
    if "labels" in features[0]:  # static masking: the mask was drawn once, at build time
        labels = torch.full_like(ids, -100)
        for i, f in enumerate(features):
            labels[i, :len(f["labels"])] = torch.tensor(f["labels"])
        x = ids
    elif whole_word is not None:
        x, labels = mask_whole_words(ids, special, whole_word, mask_id, vocab_size)
    else:
        x, labels = mask_tokens(ids, special, mask_id, vocab_size, generator=generator)
    batch = {"input_ids": x, "token_type_ids": types, "attention_mask": attention,
             "labels": labels}
    for key in PAIR_LABELS:
        if key in features[0]:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


def mask_statically(features: list[dict], seed: int, **kw) -> list[dict]:
    """Draw each instance's mask once (seeded), for static masking."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in features:
        b = collate_pretrain([f], generator=g, **kw)
        out.append(f | {"input_ids": b["input_ids"][0].tolist(), "labels": b["labels"][0].tolist()})
    return out
