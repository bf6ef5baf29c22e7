"""Extractive QA: start and end logits over the context's tokens, stacked [B, 2, L];
long contexts become overlapping windows; SQuAD exact match and F1."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from edgebert import metrics
from edgebert.data.features import INPUTS, Encoded
from edgebert.errors import UserError
from edgebert.kinds.base import Kind


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[tuple[int, str]]
    """(character start in context, answer text); SQuAD dev sets give several."""


def read_squad(path, text: str) -> list[QAExample]:
    try:
        doc = json.loads(text)
        examples = []
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    answers = [(a["answer_start"], a["text"]) for a in qa["answers"]]
                    if not answers:
                        raise UserError(f"{path}: question {qa['id']} has no answer "
                                        f"(unanswerable questions are not supported)")
                    examples.append(QAExample(str(qa["id"]), qa["question"], para["context"],
                                              answers))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not SQuAD json ({type(err).__name__}: {err}); expected "
                        f"data[].paragraphs[].qas[] with id, question, answers") from None
    if not examples:
        raise UserError(f"{path}: no questions")
    return examples


@dataclass(frozen=True)
class Spans(Kind):
    max_answer_tokens: int = 30

    def read_special(self, path, text):
        return read_squad(path, text)

    def build(self, raw, files):
        return [], raw

    def texts(self, example):
        return [example.question, example.context]

    def encode(self, examples, tokenizer, max_length, stride):
        """Long contexts become several windows overlapping by `stride` tokens."""
        enc = tokenizer([ex.question for ex in examples], [ex.context for ex in examples],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        feats, extra = [], []
        for j in range(len(enc["input_ids"])):
            i = enc["overflow_to_sample_mapping"][j]
            seq = enc.sequence_ids(j)
            offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][j], seq)]
            start_char, answer = examples[i].answers[0]
            end_char = start_char + len(answer)
            start = end = 0  # [CLS]: the answer is not in this window
            ctx = [k for k, o in enumerate(offsets) if o is not None]
            if ctx and offsets[ctx[0]][0] <= start_char and offsets[ctx[-1]][1] >= end_char:
                start = next(k for k in ctx if offsets[k][1] > start_char)
                end = next(k for k in reversed(ctx) if offsets[k][0] < end_char)
            feats.append({k: enc[k][j] for k in INPUTS if k in enc}
                         | {"start_positions": start, "end_positions": end})
            extra.append({"example": i, "offsets": offsets})
        windows = len(feats) - len(examples)
        return Encoded(feats, windows, extra)

    def score(self, labels, examples, encoded, outputs):
        return metrics.squad(*self._answers(examples, encoded, outputs))

    def outcomes(self, labels, examples, encoded, outputs):
        preds, truth = self._answers(examples, encoded, outputs)
        return metrics.outcomes_means(metrics.squad_each(preds, truth), truth)

    def _answers(self, examples, encoded, outputs):
        """(predicted answer per example, its true answers): the best span over each
        example's windows, max start + end logit, start <= end."""
        best: list[tuple[float, str]] = [(-np.inf, "")] * len(examples)
        for extra, out in zip(encoded.extra, outputs):
            start, end = out[0], out[1]
            offsets = extra["offsets"]
            ctx = [k for k, o in enumerate(offsets) if o is not None]
            if not ctx:
                continue
            top_s = sorted(ctx, key=lambda k: -start[k])[:20]
            top_e = sorted(ctx, key=lambda k: -end[k])[:20]
            i = extra["example"]
            for s in top_s:
                for e in top_e:
                    if s <= e < s + self.max_answer_tokens and start[s] + end[e] > best[i][0]:
                        text = examples[i].context[offsets[s][0]:offsets[e][1]]
                        best[i] = (float(start[s] + end[e]), text)
        return [b[1] for b in best], [[a for _, a in ex.answers] for ex in examples]

    def from_outputs(self, outs):
        return np.stack(outs[:2], 1)  # start and end: [B, 2, L]

    def trim(self, row, length):
        return row[:, :length]
