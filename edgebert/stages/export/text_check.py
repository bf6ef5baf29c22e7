"""The one-file model against Python tokenization, example by example.

For every example of a split: the graph's token ids must equal the ids
`tokenizers` gives (the artifact's own encoding), and the merged model's
prediction must equal that of the same model file fed those ids. Both run at
batch 1: dynamic INT8 picks its activation scales per batch, so padding other
examples in would change the reference, not the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.formats import session
from edgebert.kinds import kind
from edgebert.runtime import text_feed as feed
from edgebert.stages.export.text_graph import tokenizer_model


def texts(opened, split: str) -> list[tuple[str, str | None]]:
    """The raw strings an app would pass: NER words joined by spaces."""
    return [kind(opened.kind).raw_text(ex) for ex in opened.task.splits[split]]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def check(merged: Path, plain: Path, opened, split: str = "dev") -> dict:
    """Counts of token-id and prediction mismatches (0 expected), the largest score
    difference, and up to three examples of each mismatch."""
    tok = session(tokenizer_model(opened.path / "tokenizer.json", opened.kind,
                                  opened.max_length).SerializeToString(), custom_ops=True)
    text_model, ids_model = session(merged, custom_ops=True), session(plain)
    wanted = {i.name for i in ids_model.get_inputs()}
    names = [o.name for o in text_model.get_outputs()]
    labels = list(opened.task.labels or [])
    style = kind(opened.kind).text_graph
    feats = opened.encode(split).features
    bad_ids, bad_preds, max_diff = [], [], 0.0
    for (text, pair), feat in zip(texts(opened, split), feats):
        ids = tok.run(None, feed(text, pair))[0].tolist()
        if ids != list(feat["input_ids"]):
            at = next((i for i, (x, y) in enumerate(zip(ids, feat["input_ids"])) if x != y),
                      min(len(ids), len(feat["input_ids"])))
            bad_ids.append({"text": text[:200], "pair": pair and pair[:200], "position": at,
                            "graph": ids[at:at + 5], "tokenizers": feat["input_ids"][at:at + 5]})
        ref = ids_model.run(None, {k: np.array([feat[k]], dtype=np.int64) for k in wanted})[0][0]
        out = dict(zip(names, text_model.run(None, feed(text, pair))))
        if style == "value":
            diff = abs(float(ref.reshape(-1)[0]) - float(out["value"][0]))
            same = diff <= 1e-4
        elif style == "tags":
            want = [labels[i] for i in ref.argmax(-1)]
            got = [str(t) for t in out["tags"]]
            same = want == got
            diff = float(np.abs(_softmax(ref).max(-1) - out["tag_scores"]).max()) \
                if len(want) == len(got) else float("inf")
        else:
            same = labels[int(ref.argmax())] == str(out["label"][0])
            diff = float(np.abs(_softmax(ref) - out["scores"][0]).max())
        max_diff = max(max_diff, diff)
        if not same:
            bad_preds.append({"text": text[:200], "pair": pair and pair[:200], "diff": diff})
    return {"split": split, "examples": len(feats), "token_id_mismatches": len(bad_ids),
            "prediction_mismatches": len(bad_preds), "max_abs_score_diff": max_diff,
            "token_id_examples": bad_ids[:3], "prediction_examples": bad_preds[:3]}


def require(result: dict, what: str) -> None:
    """Refuse the export on any mismatch, quoting the first examples."""
    if result["token_id_mismatches"] or result["prediction_mismatches"]:
        shown = result["token_id_examples"] or result["prediction_examples"]
        raise UserError(f"{what}: over {result['examples']} {result['split']} examples the "
                        f"tokenizer graph differs from `tokenizers` on "
                        f"{result['token_id_mismatches']} and the prediction on "
                        f"{result['prediction_mismatches']}; e.g. {shown}; refusing it")


def arm64(model: Path, opened, examples: int = 64) -> dict:
    """The file under the emulated aarch64 ONNX Runtime with the extensions' aarch64
    library: the same labels as on x86 for the first dev examples, or why unchecked."""
    from edgebert.targets.arm64 import run_onnx, unavailable

    why = unavailable()
    if why:
        return {"checked": False, "reason": why}
    feeds = [{k: v.astype(str) for k, v in feed(t, p).items()}  # str arrays: no pickles
             for t, p in texts(opened, "dev")[:examples]]
    arm = run_onnx(model, feeds, extensions=True)
    x86 = session(model, custom_ops=True)
    same, diff = 0, 0.0
    for f, got in zip(feeds, arm["outputs"]):
        want = x86.run(None, {k: v.astype(object) for k, v in f.items()})
        same += all(np.array_equal(a.astype(str), w.astype(str)) for a, w in zip(got, want)
                    if w.dtype == object)
        diff = max([diff] + [float(np.abs(a - w).max()) for a, w in zip(got, want)
                             if w.dtype != object and w.size])
    return {"checked": True, "machine": arm["machine"], "onnxruntime": arm["onnxruntime"],
            "examples": len(feeds), "same_labels": same / max(len(feeds), 1),
            "max_abs_diff": diff}
