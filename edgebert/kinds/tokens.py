"""Token classification (NER): a BIO tag per word, predicted at its first sub-token.
Outputs [B, L, tags]; entity-level F1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebert import metrics
from edgebert.data.features import IGNORE, INPUTS, Encoded
from edgebert.errors import UserError
from edgebert.kinds.base import Kind, softmax, strings


@dataclass
class TokenExample:
    """One pre-split sentence with one tag index per token."""

    tokens: list[str]
    tags: list[int]


def read_conll(path: Path, text: str) -> list[dict]:
    """token<TAB>tag lines; a blank (or tab-only) line ends a sentence."""
    sentences, tokens, tags = [], [], []
    n = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags, "_where": f"line {n}"})
            tokens, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 2:
            raise UserError(f"{path}: line {n}: expected 'token<TAB>tag', got {line[:40]!r}")
        tokens.append(parts[0])
        tags.append(parts[-1].strip())
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags, "_where": f"line {n}"})
    if not sentences:
        raise UserError(f"{path}: no sentences found")
    return sentences


def tag_names(sentences: list[dict], where) -> list[str]:
    tags = {t for s in sentences for t in s["tags"]}
    bad = sorted(str(t) for t in tags if t != "O" and not str(t).startswith(("B-", "I-")))
    if bad:
        raise UserError(f"{where}: tags {', '.join(bad[:5])} are not BIO tags "
                        f"(O, B-TYPE, I-TYPE)")
    return ["O"] + sorted(tags - {"O"}, key=lambda t: (t[2:], t[0]))


def to_token_example(s: dict, labels: list[str], where) -> TokenExample:
    index = {t: i for i, t in enumerate(labels)}
    if len(s["tokens"]) != len(s["tags"]):
        raise UserError(f"{where}: {s['_where']}: {len(s['tokens'])} tokens but "
                        f"{len(s['tags'])} tags")
    for t in s["tags"]:
        if t not in index:
            raise UserError(f"{where}: {s['_where']}: tag '{t}' does not occur in the training "
                            f"data")
    return TokenExample([str(t) for t in s["tokens"]], [index[t] for t in s["tags"]])


@dataclass(frozen=True)
class TokenTags(Kind):
    def read_special(self, path, text):
        return read_conll(path, text) if path.suffix in (".txt", ".conll") else None

    def cell(self, value):
        return value  # jsonl lists of tokens and tags, as they are

    def build(self, raw, files):
        labels = tag_names(raw["train"], files["train"])
        return labels, {s: [to_token_example(r, labels, files[s]) for r in rows]
                        for s, rows in raw.items()}

    def texts(self, example):
        return list(example.tokens)

    def encode(self, examples, tokenizer, max_length, stride):
        enc = tokenizer([ex.tokens for ex in examples], is_split_into_words=True,
                        truncation=True, max_length=max_length)
        feats, extra, truncated = [], [], 0
        for i, ex in enumerate(examples):
            word_ids = enc.word_ids(i)
            labels, prev = [], None
            for w in word_ids:  # label the first piece of each word; ignore the rest
                labels.append(ex.tags[w] if w is not None and w != prev else IGNORE)
                prev = w
            kept = {w for w in word_ids if w is not None}
            truncated += len(kept) < len(ex.tokens)
            feats.append({k: enc[k][i] for k in INPUTS if k in enc}
                         | {"labels": labels})
            extra.append({"word_ids": word_ids})
        return Encoded(feats, truncated, extra)

    def score(self, labels, examples, encoded, outputs):
        return metrics.entities(*self._tags(labels, examples, encoded, outputs))

    def outcomes(self, labels, examples, encoded, outputs):
        return metrics.outcomes_entities(*self._tags(labels, examples, encoded, outputs))

    def _tags(self, labels, examples, encoded, outputs):
        """(predicted, true) word-level tags: the prediction at each word's first piece;
        words cut off by truncation are predicted O, so truncation costs recall honestly."""
        preds, truth = [], []
        for ex, feat, extra, out in zip(examples, encoded.features, encoded.extra, outputs):
            tags = ["O"] * len(ex.tokens)
            for pos, (w, lab) in enumerate(zip(extra["word_ids"], feat["labels"])):
                if lab != IGNORE:
                    tags[w] = labels[int(out[pos].argmax())]
            preds.append(tags)
            truth.append([labels[t] for t in ex.tags])
        return preds, truth

    def serve_items(self, texts, pairs=None, choices=None):
        if pairs is not None or choices is not None:
            raise ValueError(f"pairs / choices: not for a {self.name} model")
        return [(t, [t]) for t in strings(texts, "texts")]

    def serve_result(self, logits, encodings, given, labels):
        """One tag per word (its first sub-token), with character offsets into the text."""
        enc, text = encodings[0], given
        first: dict[int, int] = {}  # word -> its first token
        end: dict[int, int] = {}  # word -> where its last piece ends
        for t, (word, (_, stop)) in enumerate(zip(enc.word_ids, enc.offsets)):
            if word is not None:
                first.setdefault(word, t)
                end[word] = stop
        words = []
        for word, t in first.items():
            p = softmax(logits[t].astype(np.float64))
            best, start = int(p.argmax()), enc.offsets[t][0]
            words.append({"word": text[start:end[word]], "start": start, "end": end[word],
                          "tag": labels[best], "score": float(p[best])})
        return {"entities": words}

    def text_result(self, out, text, labels):
        """Per token: the graph has no word ids ([CLS]/[SEP] dropped by their empty span)."""
        return {"entities": [
            {"word": text[a:b], "start": int(a), "end": int(b), "tag": str(tag),
             "score": float(p)}
            for tag, p, (a, b) in zip(out["tags"], out["tag_scores"], out["offsets"])
            if b > a]}

    def raw_text(self, example):
        return " ".join(example.tokens), None
