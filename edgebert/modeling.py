"""Load BERT models with the head a task needs, through `transformers`."""

from __future__ import annotations

import os

from edgebert.errors import UserError
from edgebert.kinds import kind

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork for resolves and tests


def head_class(name: str):
    """The transformers Auto class of a task kind's head."""
    import transformers as tf

    return getattr(tf, kind(name).head)


def load_for_task(source: str, kind_name: str, labels: list[str]):
    """A model with the task's head; a new head is initialised when `source` has none.

    >>> # model = load_for_task(resolve_model("minilm-l6"), "classification", ["neg", "pos"])
    """
    from transformers import AutoConfig

    quiet_transformers()
    from edgebert.families import family_of

    try:
        config = AutoConfig.from_pretrained(source)  # unreadable: one line, before the weights
    except (OSError, ValueError) as err:
        raise UserError(f"{source}: cannot read the model config ({_first_line(err)})") from None
    family_of(config)  # an unsupported family: one line, before the weights
    return from_pretrained(head_class(kind_name), source, **kind(kind_name).head_options(labels))


def from_pretrained(cls, source, what: str = "model", **kwargs):
    """`cls.from_pretrained(source)` from safetensors only, with one clear line on failure.

    A model whose heads were pruned (config.pruned_heads) is loaded here, the same
    under transformers 4.x and 5.x: 5 no longer prunes heads itself, and 4.x would
    prune a second time what we cut. Truncated or corrupt weights, shapes that do not
    match the config, a missing file: each becomes a UserError naming the file."""
    from safetensors import SafetensorError

    quiet_transformers()
    try:
        pruned, factorized = _reshaped(source)
        if pruned or factorized:
            return _load_reshaped(cls, source, pruned, **kwargs)
        # use_safetensors: never unpickle weights a user hands in
        return cls.from_pretrained(str(source), use_safetensors=True, **kwargs)
    except SafetensorError as err:
        raise UserError(f"{source}/model.safetensors: unreadable weights "
                        f"({_first_line(err)}); the file is truncated or corrupt, re-export "
                        f"or re-copy it") from None
    except (OSError, ValueError, RuntimeError) as err:
        hint = (" (the config's shapes do not match the weights: check config.json)"
                if any(w in str(err) for w in ("size mismatch", "shape", "mismatched_sizes"))
                else "")
        raise UserError(f"{source}: cannot load the {what} ({_first_line(err)}){hint}") from None


def quiet_transformers() -> None:
    """transformers' expected chatter off: "newly initialized weights" for a new head, and
    5.x's "Loading weights" / "Writing model shards" bars (our stages show their own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _reshaped(source) -> tuple[dict[int, list[int]], int | None]:
    """What our stages changed in a model's shapes that its config alone cannot rebuild:
    pruned heads, and a factorized embedding's rank."""
    import json
    from pathlib import Path

    from edgebert.families import pruned_heads

    path = Path(str(source)) / "config.json"
    if not path.is_file():
        return {}, None  # a hub id: nothing of ours is changed there
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        return pruned_heads(config.get("pruned_heads")), config.get("factorized_embeddings")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}, None  # transformers reports the unreadable config


def _load_reshaped(cls, source, pruned: dict[int, list[int]], **kwargs):
    """Build the model at full width, cut the recorded heads, give it the factorized
    embedding its config records, then load every tensor of the checkpoint into it
    (shapes checked)."""
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import AutoConfig

    from edgebert.factorize import rebuild_
    from edgebert.families import family_of
    from edgebert.families import cut_heads_

    build = {k: kwargs.pop(k) for k in ("attn_implementation",) if k in kwargs}
    config = AutoConfig.from_pretrained(str(source), **kwargs)
    config.pruned_heads = {}  # 4.x would prune at construction
    model = cls.from_pretrained(str(source), config=config, use_safetensors=True,
                                ignore_mismatched_sizes=True, **build)
    family = family_of(model)
    layers = family.layer_list(model)
    for layer, heads in pruned.items():
        cut_heads_(family, layers[layer], heads)
    rebuild_(model)
    mine = model.state_dict()
    prefix = model.base_model_prefix
    state = {}
    for file in sorted(Path(str(source)).glob("*.safetensors")):
        for key, tensor in load_file(str(file)).items():
            for name in (key, f"{prefix}.{key}", key.removeprefix(f"{prefix}.")):
                if name in mine:
                    state[name] = tensor
                    break
    model.load_state_dict(state, strict=False)  # raises on a shape mismatch
    model.config.pruned_heads = pruned
    return model


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
"""Files one of which any tokenizer transformers can open has: its fast tokenizer, or the
vocabulary of a WordPiece, BPE or SentencePiece one (from which a fast one is built)."""


def load_tokenizer(source: str, fix: str = "save its tokenizer there "
                                          "(tokenizer.save_pretrained) and pass it again"):
    """The fast tokenizer at `source` (a model or tokenizer directory, or a hub id); every
    stage opens a model's tokenizer here. `fix` says what to pass where it has none.

    >>> # tok = load_tokenizer(resolve_model("minilm-l6"))
    """
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(str(source))
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        # a model saved with save_pretrained alone: transformers would build a tokenizer
        # class from its config and fail deep inside with a TypeError on a None path
        raise UserError(f"{source}: no tokenizer files (tokenizer.json, vocab.txt, or "
                        f"vocab.json and merges.txt); {fix}")
    try:
        tok = AutoTokenizer.from_pretrained(str(source), use_fast=True)
    except (OSError, ValueError, TypeError) as err:
        # TypeError: a tokenizer class given only part of its files (vocab.json without
        # merges.txt) opens a None path
        raise UserError(f"{source}: cannot load the tokenizer ({_first_line(err)})") from None
    if not tok.is_fast:
        raise UserError(f"{source}: needs a fast tokenizer (tokenizer.json)")
    inputs = _inputs_at(source)
    if inputs:  # encodings hold what the model takes (no token types for DistilBERT)
        tok.model_input_names = list(inputs)
    return tok


def _inputs_at(source: str) -> tuple[str, ...] | None:
    """The inputs of the model at `source`, None where there is no model config (a
    tokenizer-only directory); an unsupported model type is one line."""
    from transformers import AutoConfig

    from edgebert.families import model_inputs

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError):
        return None
    return model_inputs(config)


def save_pretrained(work, model, tokenizer) -> None:
    """A transformers model directory: safetensors weights, config, tokenizer files."""
    model.save_pretrained(work, safe_serialization=True)
    save_tokenizer(tokenizer, work)


def save_tokenizer(tokenizer, work) -> None:
    """`tokenizer.save_pretrained`, plus vocab.txt for a WordPiece tokenizer where
    transformers 5 no longer writes it: apps and mobile tokenizers read that file, and an
    artifact should hold the same files whichever transformers made it."""
    import json
    from pathlib import Path

    tokenizer.save_pretrained(str(work))
    vocab_file = Path(work) / "vocab.txt"
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    if not vocab_file.exists() and model["type"] == "WordPiece":
        ordered = sorted(model["vocab"].items(), key=lambda item: item[1])
        vocab_file.write_text("".join(token + "\n" for token, _ in ordered), encoding="utf-8")


def non_wordpiece(source) -> str | None:
    """The tokenizer.json model type at `source` when it is not WordPiece (BPE, Unigram):
    what vocabulary trimming, whole-word masking and the tokenizer-in-graph export
    refuse. None for WordPiece, and where there is no such file (a hub id: known when it
    loads)."""
    import json
    from pathlib import Path

    path = Path(str(source)) / "tokenizer.json"
    try:
        kind = json.loads(path.read_text(encoding="utf-8"))["model"]["type"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if kind == "WordPiece" else kind


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
