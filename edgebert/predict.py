"""Run a model (PyTorch or ONNX Runtime) over encoded features and score it.

A *forward* is `f(batch: dict[str, np.ndarray]) -> np.ndarray`, shaped
[B, C] (sequence heads), [B, L, C] (token heads) or [B, 2, L] (QA start/end),
so the same scoring serves every artifact format.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgebert import kinds
from edgebert.data.features import INPUTS, Encoded, length, pad_batch
from edgebert.data.tasks import Task

Forward = Callable[[dict[str, np.ndarray]], np.ndarray]


def torch_forward(model, autocast: bool = False) -> Forward:
    """A forward over a transformers model; `autocast`: under bf16 autocast (CPU), as an
    artifact recorded in bf16 runs."""
    import contextlib

    import torch

    from edgebert.formats.torch import output_array

    device = next(model.parameters()).device

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        model.eval()
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if autocast \
            else contextlib.nullcontext()
        with torch.no_grad(), cast:
            res = model(**{k: torch.from_numpy(batch[k]).to(device) for k in INPUTS if k in batch})
        return output_array(res)

    return forward


def runner_forward(runner, kind: str) -> Forward:
    """A forward over a runner of `edgebert.formats` (ONNX Runtime, OpenVINO): its named
    outputs read as the task kind reads them."""
    read = kinds.kind(kind).from_outputs
    return lambda batch: read(runner(batch))


def ort_forward(sess, kind: str) -> Forward:
    """A forward over an ONNX Runtime session, shaped like `torch_forward`."""
    from edgebert.formats.ort import OrtRunner

    return runner_forward(OrtRunner(sess), kind)


def logits(forward: Forward, encoded: Encoded, pad_id: int, kind: str, batch_size: int = 64
           ) -> list[np.ndarray]:
    """Outputs per feature, batched by length (less padding), padding cut off again."""
    feats = encoded.features
    order = sorted(range(len(feats)), key=lambda i: length(feats[i]))
    out: list[np.ndarray | None] = [None] * len(feats)
    trim = kinds.kind(kind).trim
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        arr = forward(pad_batch([feats[i] for i in idx], pad_id, INPUTS))
        for j, i in enumerate(idx):
            out[i] = trim(arr[j], length(feats[i]))
    return out


def score(task: Task, split: str, encoded: Encoded, outputs: list[np.ndarray]) -> dict:
    """Task metrics for one split, plus the truncation count; on test, the per-example
    outcomes too (`outcomes`: the report's paired standard error against the teacher)."""
    k = kinds.kind(task.kind)
    res = k.score(task.labels, task.splits[split], encoded, outputs)
    res |= {"examples": len(task.splits[split]), "truncated": encoded.truncated}
    if split == "test":
        got = k.outcomes(task.labels, task.splits[split], encoded, outputs)
        if got is not None:
            res["outcomes"] = got
    return res


def scored_as_run(forward, int8: bool):
    """How an ONNX Runtime graph is scored everywhere (quantize's guard and metrics, export,
    evaluate): an INT8 one one example at a time, unpadded. Dynamic INT8 picks its
    activation scales per batch, so in padded batches its outputs depend on the other
    texts and the padding; an app calling one text at a time (and the one-file model,
    always) gets these. Measured on the default chain's `int8/x86-vnni`: test 81.18 % in
    batches of 32, 80.63 % one at a time, dev 82.33 % both. Static INT8 scores the same
    either way (fixed scales)."""
    return one_at_a_time(forward) if int8 else forward


def one_at_a_time(forward):
    """`forward` on each example of a batch alone, unpadded, outputs padded back: what an
    app calling one text at a time gets (the one-file model always does). Dynamic INT8
    picks activation scales per batch, so padded batches differ from it slightly."""
    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        mask = batch["attention_mask"]  # [B, L], or [B, choices, L]
        width = mask.shape[-1]
        lengths = mask.reshape(len(mask), -1, width).sum(-1).max(-1)
        outs = [forward({k: v[i:i + 1, ..., :n] for k, v in batch.items()})
                for i, n in enumerate(lengths)]
        if outs[0].ndim == 3:  # per token: pad back to the batch's width
            outs = [np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0))) for o in outs]
        return np.concatenate(outs)

    return run
