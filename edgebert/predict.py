"""Run a model (PyTorch or ONNX Runtime) over encoded features and score it.

A *forward* is `f(batch: dict[str, np.ndarray]) -> np.ndarray`, shaped
[B, C] (sequence heads), [B, L, C] (token heads) or [B, 2, L] (QA start/end),
so the same scoring serves every artifact format.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgebert import kinds, metrics
from edgebert.data.encode import IGNORE, Encoded, pad_batch
from edgebert.data.tasks import Task

Forward = Callable[[dict[str, np.ndarray]], np.ndarray]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def torch_forward(model) -> Forward:
    import torch

    device = next(model.parameters()).device

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            res = model(**{k: torch.from_numpy(batch[k]).to(device) for k in INPUTS})
        if getattr(res, "start_logits", None) is not None:
            return torch.stack([res.start_logits, res.end_logits], 1).float().cpu().numpy()
        return res.logits.float().cpu().numpy()

    return forward


def logits(forward: Forward, encoded: Encoded, pad_id: int, kind: str, batch_size: int = 64
           ) -> list[np.ndarray]:
    """Outputs per feature, batched by length (less padding), padding cut off again."""
    feats = encoded.features
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    out: list[np.ndarray | None] = [None] * len(feats)
    trim = kinds.kind(kind).trim
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        arr = forward(pad_batch([feats[i] for i in idx], pad_id, INPUTS))
        for j, i in enumerate(idx):
            out[i] = trim(arr[j], len(feats[i]["input_ids"]))
    return out


def score(task: Task, split: str, encoded: Encoded, outputs: list[np.ndarray]) -> dict:
    """Task metrics for one split, plus the truncation count."""
    feats = encoded.features
    if task.kind in ("classification", "pair"):
        res = metrics.classification(np.stack(outputs), np.array([f["labels"] for f in feats]))
    elif task.kind == "regression":
        res = metrics.regression(np.stack(outputs)[:, 0], np.array([f["labels"] for f in feats]))
    elif task.kind == "ner":
        res = metrics.entities(*_ner_tags(task, split, encoded, outputs))
    else:
        res = metrics.squad(*_qa_answers(task, split, encoded, outputs))
    return res | {"examples": len(task.splits[split]), "truncated": encoded.truncated}


def _ner_tags(task: Task, split: str, encoded: Encoded, outputs):
    """Word-level tags: the prediction at each word's first piece; words cut off by
    truncation are predicted O, so truncation costs recall honestly."""
    preds, truth = [], []
    for ex, feat, extra, out in zip(task.splits[split], encoded.features, encoded.extra, outputs):
        tags = ["O"] * len(ex.tokens)
        for pos, (w, lab) in enumerate(zip(extra["word_ids"], feat["labels"])):
            if lab != IGNORE:
                tags[w] = task.labels[int(out[pos].argmax())]
        preds.append(tags)
        truth.append([task.labels[t] for t in ex.tags])
    return preds, truth


def _qa_answers(task: Task, split: str, encoded: Encoded, outputs, max_answer_tokens: int = 30):
    """Best span over each example's windows: max start + end logit, start <= end."""
    examples = task.splits[split]
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
                if s <= e < s + max_answer_tokens and start[s] + end[e] > best[i][0]:
                    text = examples[i].context[offsets[s][0]:offsets[e][1]]
                    best[i] = (float(start[s] + end[e]), text)
    return [b[1] for b in best], [[a for _, a in ex.answers] for ex in examples]


def one_at_a_time(forward):
    """`forward` on each example of a batch alone, unpadded, outputs padded back: what an
    app calling one text at a time gets (the one-file model always does). Dynamic INT8
    picks activation scales per batch, so padded batches differ from it slightly."""
    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        lengths = batch["attention_mask"].sum(1)
        outs = [forward({k: v[i:i + 1, :n] for k, v in batch.items()})
                for i, n in enumerate(lengths)]
        if outs[0].ndim == 3:  # per token: pad back to the batch's width
            width = batch["attention_mask"].shape[1]
            outs = [np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0))) for o in outs]
        return np.concatenate(outs)

    return run
