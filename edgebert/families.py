"""The encoder families EdgeBERT compresses, and what each stage needs to know of them,
declared once: which inputs a family takes, where its layers, attention heads and FFN
live, which config field holds the FFN width, and whether its layers share weights.

    >>> family_of("distilbert").inputs
    ('input_ids', 'attention_mask')
    >>> family_of("roberta").name
    'bert'

Paths are attribute paths from the model's `base_model` (layers) or from one layer (the
rest). Stages ask the family (`layers(model)`, `heads(layer)`, ...) instead of branching
on `model_type`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgebert.data.features import INPUTS
from edgebert.errors import UserError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    """config.model_type values of this layout."""
    layers: str
    """Path from base_model to the ModuleList of distinct layers."""
    attention: str
    """Path from a layer to the module that holds the head count and q, k, v."""
    qkv: tuple[str, str, str]
    """Query, key and value projections, inside `attention`."""
    attention_out: str
    """Path from a layer to the attention's output projection (its input is the heads'
    context vectors, head after head)."""
    ffn: tuple[str, str]
    """Paths from a layer to the FFN's first and second Linear."""
    head_count: tuple[str, str]
    """Attributes of `attention` that its forward reads: the head count and the all-heads
    width (head count x head size); set after heads are cut."""
    ffn_width: str = "intermediate_size"
    """The config field of the FFN width."""
    inputs: tuple[str, ...] = INPUTS
    """The model's forward inputs (DistilBERT has no token types)."""
    shared_layers: bool = False
    """ALBERT: one group of layers, run `num_hidden_layers` times with the same weights."""

    def layer_list(self, model) -> list:
        """The distinct layers (ALBERT: those of its groups, not the repetitions)."""
        if self.shared_layers:
            return [layer for group in get(model.base_model, self.layers)
                    for layer in group.albert_layers]
        return list(get(model.base_model, self.layers))

    def set_layers(self, model, keep: list[int]) -> None:
        """Keep only layers `keep` (in that order); a shared stack keeps that many
        repetitions of its one group."""
        if self.shared_layers:
            check_single_group(model.config)
        else:
            import torch

            layers = get(model.base_model, self.layers)
            owner, name = _parent(model.base_model, self.layers)
            setattr(owner, name, torch.nn.ModuleList(layers[i] for i in keep))
        model.config.num_hidden_layers = len(keep)

    def layer_keys(self) -> re.Pattern | None:
        """Matches a layer's state-dict keys as (prefix, index, rest); None when layers
        share weights (there is no per-layer key to renumber)."""
        if self.shared_layers:
            return None
        return re.compile(rf"^(.*\b{re.escape(self.layers)}\.)(\d+)(\..*)$")

    def attention_module(self, layer):
        return get(layer, self.attention)

    def heads(self, layer) -> int:
        return getattr(self.attention_module(layer), self.head_count[0])

    def head_size(self, layer) -> int:
        return self.attention_module(layer).attention_head_size


def get(obj, path: str):
    """The submodule at a dotted path ("attention.self.query", "ffn.lin1", "encoder.0")."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _parent(obj, path: str):
    *head, last = path.split(".")
    return (get(obj, ".".join(head)) if head else obj), last


def put(obj, path: str, module) -> None:
    owner, name = _parent(obj, path)
    setattr(owner, name, module)


_BERT = dict(attention="attention.self", qkv=("query", "key", "value"),
             attention_out="attention.output.dense",
             ffn=("intermediate.dense", "output.dense"),
             head_count=("num_attention_heads", "all_head_size"))

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bert", ("bert", "roberta", "electra", "xlm-roberta", "camembert"),
           layers="encoder.layer", **_BERT),
    Family("distilbert", ("distilbert",), layers="transformer.layer", attention="attention",
           qkv=("q_lin", "k_lin", "v_lin"), attention_out="attention.out_lin",
           ffn=("ffn.lin1", "ffn.lin2"), head_count=("n_heads", "dim"),
           ffn_width="hidden_dim", inputs=("input_ids", "attention_mask")),
    Family("albert", ("albert",), layers="encoder.albert_layer_groups", attention="attention",
           qkv=("query", "key", "value"), attention_out="attention.dense",
           ffn=("ffn", "ffn_output"), head_count=("num_attention_heads", "all_head_size"),
           shared_layers=True),
)}
"""BERT's layout covers RoBERTa, ELECTRA (and XLM-R, CamemBERT): the same modules under
another base-model name."""

SUPPORTED = tuple(t for f in FAMILIES.values() for t in f.model_types)


def family_of(model_or_type) -> Family:
    """The family of a model, a config, or a model_type string; one line naming the
    supported ones for any other."""
    model_type = model_or_type if isinstance(model_or_type, str) else getattr(
        getattr(model_or_type, "config", model_or_type), "model_type", None)
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise UserError(f"model type {model_type!r} is not supported; EdgeBERT compresses "
                    f"{', '.join(SUPPORTED)}")


def model_inputs(model_or_config) -> tuple[str, ...]:
    """The inputs a model takes: its family's, less token types where the model has one
    type only (a RoBERTa: its tokenizer returns none, and a pair's second type would
    index past its table)."""
    config = getattr(model_or_config, "config", model_or_config)
    inputs = family_of(config).inputs
    if getattr(config, "type_vocab_size", 2) < 2:
        inputs = tuple(k for k in inputs if k != "token_type_ids")
    return inputs


def check_single_group(config) -> None:
    """An ALBERT with several layer groups maps repetitions to groups by position:
    changing the repetition count would move layers between groups."""
    if getattr(config, "num_hidden_groups", 1) != 1 or getattr(config, "inner_group_num", 1) != 1:
        raise UserError("an ALBERT with several layer groups (num_hidden_groups "
                        f"{config.num_hidden_groups}, inner_group_num {config.inner_group_num})"
                        ": only the one-group layout (every released ALBERT) can lose layers")


# Cutting heads and neurons: what pruning does, and what loading a pruned model repeats.

def pruned_heads(record: dict | None) -> dict[int, list[int]]:
    """A config's pruned_heads as {layer: original head indices} (JSON keeps keys as text;
    transformers 5 has no such field, so a fresh config may lack it)."""
    return {int(k): sorted(v) for k, v in (record or {}).items() if v}


def cut_heads_(family, layer, heads: list[int]) -> None:
    """Drop heads (indices among the layer's current heads) from one layer's attention:
    their rows of query, key and value and their columns of the output projection."""
    import torch

    own = family.attention_module(layer)
    n, size = family.heads(layer), family.head_size(layer)
    if not heads:
        return
    keep = torch.tensor([h * size + i for h in range(n) if h not in set(heads)
                         for i in range(size)])
    for name in family.qkv:
        setattr(own, name, keep_rows(getattr(own, name), keep))
    put(layer, family.attention_out, keep_columns(get(layer, family.attention_out), keep))
    count, width = family.head_count  # what the family's forward reads (4.x: both)
    setattr(own, count, n - len(set(heads)))
    setattr(own, width, getattr(own, count) * size)


def keep_rows(linear, idx):
    """A Linear with only rows `idx` of `linear` (output features)."""
    import torch

    new = torch.nn.Linear(linear.in_features, len(idx))
    new.weight.data = linear.weight.data[idx].clone()
    new.bias.data = linear.bias.data[idx].clone()
    return new


def keep_columns(linear, idx):
    """A Linear with only columns `idx` of `linear` (input features)."""
    import torch

    new = torch.nn.Linear(len(idx), linear.out_features)
    new.weight.data = linear.weight.data[:, idx].clone()
    new.bias.data = linear.bias.data.clone()
    return new
