"""Load BERT models with the head a task needs, through `transformers`."""

from __future__ import annotations

import os

from edgebert.errors import UserError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork for resolves and tests


def head_class(kind: str):
    import transformers as tf

    return {"classification": tf.AutoModelForSequenceClassification,
            "pair": tf.AutoModelForSequenceClassification,
            "regression": tf.AutoModelForSequenceClassification,
            "ner": tf.AutoModelForTokenClassification,
            "qa": tf.AutoModelForQuestionAnswering}[kind]


def load_for_task(source: str, kind: str, labels: list[str]):
    """A model with the task's head; a new head is initialised when `source` has none.

    >>> # model = load_for_task(resolve_model("minilm-l6"), "classification", ["neg", "pos"])
    """
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialized weights" is expected for a new head
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise UserError(f"{source}: cannot read the model config ({_first_line(err)})") from None
    kwargs: dict = {}
    if kind == "regression":
        kwargs = {"num_labels": 1, "problem_type": "regression"}
    elif labels:
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {name: i for i, name in enumerate(labels)}}
    return from_pretrained(head_class(kind), source, **kwargs)


def from_pretrained(cls, source, what: str = "model", **kwargs):
    """`cls.from_pretrained(source)` from safetensors only, with one clear line on failure.

    Truncated or corrupt weights, shapes that do not match the config, a missing
    file: each becomes a UserError naming the file."""
    from safetensors import SafetensorError

    try:
        # use_safetensors: never unpickle weights a user hands in
        return cls.from_pretrained(str(source), use_safetensors=True, **kwargs)
    except SafetensorError as err:
        raise UserError(f"{source}/model.safetensors: unreadable weights "
                        f"({_first_line(err)}); the file is truncated or corrupt, re-export "
                        f"or re-copy it") from None
    except (OSError, ValueError, RuntimeError) as err:
        hint = (" (the config's shapes do not match the weights: check config.json)"
                if "size mismatch" in str(err) or "shape" in str(err) else "")
        raise UserError(f"{source}: cannot load the {what} ({_first_line(err)}){hint}") from None


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source, use_fast=True)
    except (OSError, ValueError) as err:
        raise UserError(f"{source}: cannot load the tokenizer ({_first_line(err)})") from None
    if not tok.is_fast:
        raise UserError(f"{source}: needs a fast tokenizer (tokenizer.json)")
    return tok


def check_vocab(model, tokenizer, source: str) -> None:
    """A tokenizer larger than the embedding table would index out of range."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(f"{source}: the tokenizer has {len(tokenizer)} tokens but the model's "
                        f"embedding table has {rows} rows; they do not belong together")


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
