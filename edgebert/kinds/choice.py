"""Multiple choice (SWAG-style): a context and N candidate endings; the model scores
each (context, ending) pair and a softmax over the N picks one.

Inputs are [batch, choices, sequence]; outputs [batch, choices]; accuracy on dev.
Rows come as jsonl (`context`, a `choices` list, `label` = the right one's index) or
SWAG's csv (`sent1` the context, `sent2` the start every ending continues,
`ending0`..`ending3`, `label`). `--columns` renames either: `choices=ending` names the
numbered columns ending0, ending1, ...; `start` is optional.

A context past the token budget is truncated, never an ending (an ending is what is
being judged); such examples are counted. Only an ending that alone does not fit is cut
too (counted the same; raise --max-length).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

from edgebert.data.features import INPUTS, Encoded
from edgebert.errors import UserError
from edgebert.kinds.base import Kind, refuse_missing, softmax, strings
from edgebert.kinds.sequence import Classification

SWAG = {"context": "sent1", "start": "sent2", "choices": "ending", "label": "label"}
JSONL = {"context": "context", "start": "start", "choices": "choices", "label": "label"}


@dataclass
class ChoiceExample:
    context: str
    choices: list[str]
    """Each candidate as the model reads it after the context (the start and the ending)."""
    label: int
    """Index of the right choice."""


@dataclass(frozen=True)
class MultipleChoice(Kind):
    timed_choices: int = 4
    """Choices per example in benchmarks' synthetic inputs (SWAG has 4)."""
    optional_roles: tuple[str, ...] = ("start",)

    # ------------------------------------------------------------------ reading

    def rows(self, path, records, columns, given):
        mapping = (SWAG if "sent1" in columns and "context" not in columns else JSONL) | given
        prefix = mapping["choices"]
        numbered = sorted((c for c in columns
                           if c.startswith(prefix) and c[len(prefix):].isdigit()),
                          key=lambda c: int(c[len(prefix):]))
        missing = [f"{role} (column '{mapping[role]}')" for role in ("context", "label")
                   if mapping[role] not in columns]
        if prefix not in columns and not numbered:
            missing.append(f"choices (column '{prefix}', or {prefix}0, {prefix}1, ...)")
        refuse_missing(path, missing, columns, " (roles: context, choices, label, start)")
        rows = []
        for where, rec in records:
            def bad(msg: str):
                return UserError(f"{path}: {where}: {msg}")

            context, label = rec.get(mapping["context"]), rec.get(mapping["label"])
            if context is None or not str(context).strip():
                raise bad(f"empty '{mapping['context']}'")
            choices = rec.get(prefix) if prefix in columns else [rec.get(c) for c in numbered]
            if isinstance(choices, str):  # a csv cell holding a JSON list
                try:
                    choices = json.loads(choices)
                except json.JSONDecodeError:
                    raise bad(f"'{prefix}' is not a list of choices (jsonl: a list; csv: "
                              f"columns {prefix}0, {prefix}1, ...)") from None
            if not isinstance(choices, list) or len(choices) < 2:
                raise bad(f"'{prefix}' must be a list of at least 2 choices")
            for i, c in enumerate(choices):
                if c is None or not str(c).strip():
                    raise bad(f"choice {i} is empty")
            try:
                index = int(str(label).strip())
            except ValueError:
                raise bad(f"label {label!r} is not a choice index") from None
            if not 0 <= index < len(choices):
                raise bad(f"label {index} is outside the {len(choices)} choices (0.."
                          f"{len(choices) - 1})")
            start = str(rec.get(mapping["start"]) or "").strip()
            rows.append({"_where": where, "context": str(context),
                         "choices": [f"{start} {c}".strip() for c in map(str, choices)],
                         "label": index})
        return rows

    def build(self, raw, files):
        counts = Counter(len(r["choices"]) for rows in raw.values() for r in rows)
        count = counts.most_common(1)[0][0]
        for s, rows in raw.items():
            for r in rows:
                if len(r["choices"]) != count:
                    raise UserError(f"{files[s]}: {r['_where']}: {len(r['choices'])} choices, "
                                    f"where the other rows have {count}; every row needs the "
                                    f"same number")
        return [], {s: [ChoiceExample(r["context"], r["choices"], r["label"]) for r in rows]
                    for s, rows in raw.items()}

    def texts(self, example):
        return [example.context, *example.choices]

    # ------------------------------------------------------------------ the model

    def encode(self, examples, tokenizer, max_length, stride):
        firsts = [ex.context for ex in examples for _ in ex.choices]
        seconds = [c for ex in examples for c in ex.choices]
        full = tokenizer(firsts, seconds)["input_ids"]
        alone = tokenizer(seconds)["input_ids"]  # [CLS] choice [SEP]
        # + [SEP] and one context token; an ending that alone is past the budget (rare: a
        # raised --max-length fixes it) is cut too, or the tokenizer would refuse the batch
        fits = [len(ids) + 2 <= max_length for ids in alone]
        enc = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length) \
            if all(fits) else self._mixed(tokenizer, firsts, seconds, fits, max_length)
        feats, truncated, at = [], 0, 0
        for ex in examples:
            rows = range(at, at + len(ex.choices))
            at += len(ex.choices)
            truncated += any(len(full[i]) > max_length for i in rows)
            feats.append({k: [enc[k][i] for i in rows]
                          for k in INPUTS if k in enc}
                         | {"labels": ex.label})
        return Encoded(feats, truncated)

    @staticmethod
    def _mixed(tokenizer, firsts, seconds, fits, max_length) -> dict:
        """Encodings where the rows that fit cut only the context, the others both."""
        keys = [k for k in INPUTS if k in tokenizer.model_input_names]
        out = {k: [None] * len(firsts) for k in keys}
        for ok, strategy in ((True, "only_first"), (False, "longest_first")):
            rows = [i for i, f in enumerate(fits) if f == ok]
            if rows:
                enc = tokenizer([firsts[i] for i in rows], [seconds[i] for i in rows],
                                truncation=strategy, max_length=max_length)
                for k in keys:
                    for j, i in enumerate(rows):
                        out[k][i] = enc[k][j]
        return out

    # one score per choice, argmax the answer: scored as a classification over choices
    score = Classification.score
    outcomes = Classification.outcomes

    # ------------------------------------------------------------------ export

    def input_axes(self):
        return {0: "batch", 1: "choices", 2: "sequence"}

    def input_shape(self, batch, seq):
        return (batch, self.timed_choices, seq)

    def output_axes(self):
        return {name: {0: "batch", 1: "choices"} for name in self.outputs}

    # ------------------------------------------------------------------ serving

    def serve_items(self, texts, pairs=None, choices=None):
        if pairs is not None:
            raise ValueError("pairs: not for a multiple-choice model; pass choices=[...]")
        if choices is None:
            raise ValueError("this is a multiple-choice model: pass choices=[[...], ...], "
                             "a list of candidate texts per context")
        if isinstance(texts, str):  # one context and its list of choices
            texts, choices = [texts], [choices]
        texts = strings(texts, "texts")
        if len(choices) != len(texts):
            raise ValueError(f"choices: {len(choices)} lists for {len(texts)} contexts")
        items = []
        for t, cs in zip(texts, choices):
            cs = strings(cs, "choices")
            if len(cs) < 2:
                raise ValueError("choices: at least 2 per context")
            items.append(((t, cs), [(t, c) for c in cs]))
        return items

    def serve_result(self, logits, encodings, given, labels):
        p = softmax(logits.astype(np.float64))
        best = int(p.argmax())
        return {"choice": best, "text": given[1][best], "score": float(p[best]),
                "scores": [float(v) for v in p]}

    def check_inputs(self, examples):
        return {"texts": [ex.context for ex in examples],
                "choices": [ex.choices for ex in examples]}

    def chosen(self, result, labels):
        return result["choice"]

