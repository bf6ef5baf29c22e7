"""The position table cut to the positions the artifact can use.

A BERT checkpoint carries 512 position rows; an artifact made for `max_length` tokens
(its tokenizer truncates there, and so do the runtime, the one-file model and every
stage) reads the first `max_length` of them. The rest is file size: 0.15 of the
default recipe's 4.05 MB INT8 model (384 wide, 8-bit rows), 0.59 MB in FP32. Like the
trimmed vocabulary, the cut is checked: the model's outputs at the longest input must
not change by a bit, or the table stays whole.

    made = trim_positions(model_onnx, max_length=128, check=feeds)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

READERS = {"Gather": 0, "EmbedLayerNormalization": 3, "QEmbedLayerNormalization": 3}
"""The ops that read a position table, and at which input (ORT's contrib op schemas)."""

OFFSET = 2
"""Rows kept past max_length: RoBERTa-style position ids start at padding_idx + 1 = 2."""


def trim_positions(path: Path, max_length: int, check) -> dict | None:
    """Cut every position table of the ONNX model at `path` (in place) to max_length +
    OFFSET rows, with the per-row scales and zero points that go with them, when the
    outputs of `check(session) -> np.ndarray` (a run at max_length tokens) do not change;
    returns what was done, or None when there was nothing to cut."""
    import onnx
    from onnx import numpy_helper

    from edgebert.formats import session

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    readers: dict[str, set[tuple[str, int]]] = {}
    for n in graph.node:
        for i, name in enumerate(n.input):
            if name in inits:
                readers.setdefault(name, set()).add((n.op_type, i))
    rows = max_length + OFFSET
    tables = [name for name, used in readers.items()
              if "position_embeddings" in name and len(inits[name].dims) == 2
              and inits[name].dims[0] > rows and all(READERS.get(op) == i for op, i in used)]
    if not tables:
        return None
    before = check(session(str(path)))
    rows_before = {}
    for name in tables:
        table = numpy_helper.to_array(inits[name])
        rows_before[name] = table.shape[0]
        inits[name].CopyFrom(numpy_helper.from_array(table[:rows], name))
        base = name.removesuffix("_quantized")
        for extra in (f"{base}_scale", f"{base}_zero_point"):  # per-row ones, if any
            if extra in inits and list(inits[extra].dims[:1]) == [table.shape[0]]:
                inits[extra].CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(inits[extra])[:rows], extra))
    trial = path.with_name("positions_trimmed.onnx")
    onnx.save(model, str(trial))
    try:
        same = np.array_equal(before, check(session(str(trial))))
    except Exception as err:  # noqa: BLE001 - an op that wanted the whole table: keep it
        same, why = False, f"{type(err).__name__}: {str(err)[:200]}"
    else:
        why = "outputs changed"
    mb = (path.stat().st_size - trial.stat().st_size) / 1e6
    if not same:
        trial.unlink()
        return {"kept": False, "reason": why, "rows_before": rows_before}
    trial.replace(path)
    return {"kept": True, "rows_before": rows_before, "rows_after": rows, "max_tokens": rows
            - OFFSET, "mb_saved": mb}


def longest_input(kind_name: str, max_length: int, vocab: int):
    """check(session) for trim_positions: the model's first output on one input of
    max_length tokens (ids inside the vocabulary, past the specials)."""
    from edgebert.kinds import kind

    shape = kind(kind_name).input_shape(1, max_length)
    ids = np.random.default_rng(0).integers(min(1000, vocab // 2), vocab, shape, dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones(shape, np.int64),
             "token_type_ids": np.zeros(shape, np.int64)}

    def check(sess) -> np.ndarray:
        return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]

    return check
