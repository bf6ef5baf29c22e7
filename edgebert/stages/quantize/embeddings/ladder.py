"""Which word table the quantize stage keeps: it tries the bits of --embedding-bits' ladder
(1, 2, 4; or 2, 4; or 4) in turn and keeps the first within the budgets, else the table
stays as it was (8-bit, or FP32 where the guard kept it so)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgebert.errors import UserError
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.quantize.embeddings.codecs import CODECS

LADDERS = {1: (1, 2, 4), 2: (2, 4), 4: (4,)}
"""Bits per value the word table tries, in order, for each --embedding-bits: the first
within the budget is kept."""


def table_verdict(drop_b: float, drop: float, budget: float, cap: float | None) -> str | None:
    """Why a word table that leaves the model `drop_b` dev points under FP32 (`drop` with
    the table as it was) is refused, or None where it is kept: past the model's `budget`,
    or costing more than `cap` points by itself (None: no cap), counted from the model with
    the table as it was (where INT8 had gained dev points, the table loses them too: on
    vader-amazon INT8 was +0.14 and the 1-bit table 0.52 under it on dev, 0.63 on train,
    0.90 on test; the benchmark store's heads rows).

    >>> table_verdict(0.98, 0.0, 1.0, None), table_verdict(0.98, 0.0, 1.0, 0.5)
    (None, 'its own cost 0.98 > 0.50 points (--embedding-max-drop)')
    >>> table_verdict(0.48, 0.1, 1.0, 0.5), table_verdict(0.38, -0.14, 1.0, 0.5)
    (None, 'its own cost 0.52 > 0.50 points (--embedding-max-drop)')
    """
    if drop_b > budget:
        return "over the budget"
    cost = drop_b - drop
    if cap is not None and cost > cap + 1e-9:
        return f"its own cost {cost:.2f} > {cap:.2f} points (--embedding-max-drop)"
    return None


def lowbit_table(final: Path, scratch: Path, cfg: QuantizeConfig, opened, model,
                 drop_of: Callable[[Path], float], drop: float, log=print
                 ) -> tuple[float, dict]:
    """The word table of `final` (in place) at `cfg.embedding_bits`, else at the next bits
    of its ladder where it takes the model past `cfg.max_drop` dev points of FP32 (as
    `drop_of(path)` measures a graph) or costs more than `cfg.embedding_max_drop` by itself
    (table_verdict), else left as it was: (the dev drop of what is kept, what was measured).
    `drop` is the model's with the table as it was; `model`, the PyTorch model `final` was
    made from (None: an ONNX source, the codebooks are k-means' alone).

    >>> # drop, record = lowbit_table(Path("int8/model.onnx"), Path("scratch"), cfg, opened,
    >>> #                             model, drop_of, drop=0.2)
    """
    from edgebert.stages.quantize.embeddings.rewrite import word_embeddings

    budget, cap = cfg.max_drop, cfg.embedding_max_drop
    tune = tuner(opened, model, log) \
        if CODECS[cfg.embedding_bits].tuned and model is not None else None
    tries = []
    for b in LADDERS[cfg.embedding_bits]:
        trial = scratch / f"embed{b}.onnx"
        try:
            made = word_embeddings(final, trial, b,
                                   weights=piece_weights(opened) if CODECS[b].weighted else None,
                                   tune=tune if CODECS[b].tuned else None)
        except UserError as e:  # a graph or shape it does not rewrite: the model stands
            log(f"{b}-bit word embeddings: not applied: {e}")
            tries.append({"bits": b, "kept": False, "reason": str(e)})
            continue
        drop_b = drop_of(trial)
        refused = table_verdict(drop_b, drop, budget, cap)
        kept = refused is None
        log(f"{b}-bit word embeddings: {made.mb_before:.2f} -> {made.mb_after:.2f} MB, dev "
            f"drop {drop_b:.2f} points vs FP32 (the table as it was: {drop:.2f}; budget "
            f"{budget:.2f}): " + ("kept" if kept else refused))
        tries.append(made.record() | {"kept": kept, "dev_drop": drop_b,
                                      "dev_cost": drop_b - drop}
                     | ({} if kept else {"reason": refused}))
        if kept:
            shutil.move(trial, final)
            return drop_b, tries[-1] | {"dev_drop_before": drop, "tries": tries,
                                        "max_cost": cap}
    log("word embeddings: the table stays as it was")
    return drop, {"kept": False, "bits": None, "dev_drop_before": drop, "tries": tries,
                  "max_cost": cap, "reason": tries[-1].get("reason", "over the budget")}


def tuner(opened, model, log):
    """tune(codes, books) for the 1-bit table: its codebooks trained against `model` (the
    PyTorch model this INT8 one was made from) on the task's training texts. Where that
    model's word table is not the graph's (a factorized one) it raises UserError, and the
    ladder goes on to 2 bits."""
    from edgebert import task_training
    from edgebert.stages.quantize.embeddings.codebooks import tune_codebooks

    table = getattr(model.get_input_embeddings(), "weight", None)
    rows = -1 if table is None else table.shape[0]
    data = task_training.prepare(opened.task, opened.tokenizer, opened.max_length, log)

    def tune(codes: np.ndarray, books: np.ndarray):
        if len(codes) != rows:
            raise UserError(f"the graph's word table has {len(codes)} rows and the PyTorch "
                            f"model's {rows}; the codebooks are not tuned")
        return tune_codebooks(model, data, codes, books, log)
    return tune


def piece_weights(opened) -> np.ndarray:
    """Per vocabulary id, the square root of 1 + its uses in the training texts: k-means of
    the product-quantized table then spends its codebook entries on the words the task uses
    most."""
    from edgebert.modeling import load_tokenizer
    from edgebert.vocab import piece_counts, texts_of

    tokenizer = load_tokenizer(str(opened.path))
    counts = piece_counts(tokenizer, texts_of(opened.task.splits["train"], opened.task.kind))
    uses = np.zeros(len(tokenizer))
    for i, n in counts.items():
        uses[i] = n
    return np.sqrt(1 + uses)
