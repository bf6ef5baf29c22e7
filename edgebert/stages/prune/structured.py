"""Structured pruning: remove heads, FFN neurons and layers so the matrices really shrink.

Heads are cut out of the query/key/value rows and the output columns
(`families.cut_heads_`, which `modeling.from_pretrained` also uses), and recorded in
config.pruned_heads (original numbering) so loading the model cuts the same ones:
transformers 5 dropped its own `prune_heads`, and 4.x re-applied it only through its own
loader. FFN neurons keep the same count in every layer, because a config has one FFN
width; the ranking is within each layer. Where the modules live is the model's family's
(`edgebert.families`); an ALBERT's one shared layer is pruned once, for every
repetition.
"""

from __future__ import annotations

import torch

from edgebert.errors import UserError
from edgebert.families import cut_heads_, family_of, get, keep_columns, keep_rows, pruned_heads, put


def amount(value: float, total: int, option: str) -> int:
    """A fraction (< 1) or a count (>= 1) of `total`, as a count.

    >>> amount(0.5, 12, "--heads"), amount(3, 12, "--heads")
    (6, 3)
    """
    n = round(value * total) if value < 1 else int(value)
    if not 0 <= n < total:
        raise UserError(f"{option}: {value} would remove {n} of {total}; keep at least one")
    return n


def choose_heads(imp: torch.Tensor, value: float, scope: str) -> dict[int, list[int]]:
    """The least important heads (indices among each layer's current heads; inf marks a
    head a layer no longer has): `value` per layer (scope=layer) or over all (global),
    never every head of a layer."""
    counts = [int(torch.isfinite(row).sum()) for row in imp]
    if scope == "layer":
        chosen = {}
        for i, row in enumerate(imp):
            n = amount(value, counts[i], "--heads")
            if n:
                chosen[i] = sorted(row.argsort()[:n].tolist())
        return chosen
    n = amount(value, sum(counts), "--heads")
    order = imp.flatten().argsort().tolist()[:sum(counts)]
    chosen: dict[int, list[int]] = {}
    for flat in order:
        if sum(len(v) for v in chosen.values()) == n:
            break
        layer, head = divmod(flat, imp.shape[1])
        if len(chosen.get(layer, [])) < counts[layer] - 1:
            chosen.setdefault(layer, []).append(head)
    return {k: sorted(v) for k, v in sorted(chosen.items())}


def prune_heads_(model, heads: dict[int, list[int]]) -> None:
    """Remove heads in place. `heads` index each layer's current heads; the record in
    config.pruned_heads uses the original numbering, which skips the heads pruned before."""
    before = pruned_heads(getattr(model.config, "pruned_heads", None))
    total = model.config.num_attention_heads
    family = family_of(model)
    layers = family.layer_list(model)
    for layer, current in heads.items():
        alive = [h for h in range(total) if h not in before.get(layer, [])]
        before[layer] = sorted(set(before.get(layer, [])) | {alive[h] for h in current})
        cut_heads_(family, layers[layer], current)
    model.config.pruned_heads = before


def choose_ffn(imp: list[torch.Tensor], value: float) -> dict[int, torch.Tensor]:
    """Indices of the FFN neurons to keep in each layer (the same count everywhere)."""
    size = imp[0].numel()
    n = amount(value, size, "--ffn")
    return {i: scores.argsort(descending=True)[:size - n].sort().values
            for i, scores in enumerate(imp)}


def prune_ffn_(model, keep: dict[int, torch.Tensor]) -> None:
    """Keep rows `keep[i]` of each layer's first FFN Linear and the same columns of its
    second."""
    sizes = {len(v) for v in keep.values()}
    if len(sizes) != 1:
        raise UserError("FFN pruning must keep the same number of neurons in every layer")
    family = family_of(model)
    first, second = family.ffn
    for i, layer in enumerate(family.layer_list(model)):
        idx = keep[i]
        put(layer, first, keep_rows(get(layer, first), idx))
        put(layer, second, keep_columns(get(layer, second), idx))
    setattr(model.config, family.ffn_width, sizes.pop())


def drop_layers_(model, drop: list[int]) -> None:
    """Remove whole encoder layers; pruned-head records follow the renumbering. Layers
    that share weights (ALBERT) drop repetitions: the shared layer and its record stay."""
    family = family_of(model)
    n = model.config.num_hidden_layers
    bad = [i for i in drop if not 0 <= i < n]
    if bad or len(set(drop)) >= n:
        raise UserError(f"--drop-layers: {drop} is not a proper subset of layers 0..{n - 1}")
    kept = [i for i in range(n) if i not in set(drop)]
    family.set_layers(model, kept)
    if not family.shared_layers:
        old = pruned_heads(getattr(model.config, "pruned_heads", None))
        model.config.pruned_heads = {new: old[i] for new, i in enumerate(kept) if i in old}


def heads_per_layer(model) -> list[int]:
    family = family_of(model)
    return [family.heads(layer) for layer in family.layer_list(model)]


def shapes(model) -> dict:
    """What a pruning stage records of a model's size: parameters, layers, heads per layer
    and the FFN width."""
    from edgebert.modeling import count_params

    return {"params": count_params(model), "layers": model.config.num_hidden_layers,
            "heads_per_layer": heads_per_layer(model),
            "intermediate_size": getattr(model.config, family_of(model).ffn_width)}
