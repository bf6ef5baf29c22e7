"""Structured pruning: remove heads, FFN neurons and layers so the matrices really shrink.

Heads go through `transformers`' own `prune_heads` (recorded in config.pruned_heads,
re-applied by from_pretrained). FFN neurons keep the same count in every layer,
because a BertConfig has one intermediate_size; the ranking is within each layer.
"""

from __future__ import annotations

import torch

from edgebert.errors import UserError


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
    """Remove heads in place (transformers rewrites the q/k/v/o matrices). `heads` index
    each layer's current heads; transformers wants the original numbering, which skips
    the heads pruned before (config.pruned_heads)."""
    before = {int(k): set(v) for k, v in (model.config.pruned_heads or {}).items()}
    total = model.config.num_attention_heads
    original = {}
    for layer, current in heads.items():
        alive = [h for h in range(total) if h not in before.get(layer, set())]
        original[layer] = [alive[h] for h in current]
    if original:
        model.prune_heads(original)


def choose_ffn(imp: list[torch.Tensor], value: float) -> dict[int, torch.Tensor]:
    """Indices of the FFN neurons to keep in each layer (the same count everywhere)."""
    size = imp[0].numel()
    n = amount(value, size, "--ffn")
    return {i: scores.argsort(descending=True)[:size - n].sort().values
            for i, scores in enumerate(imp)}


def prune_ffn_(model, keep: dict[int, torch.Tensor]) -> None:
    """Keep rows `keep[i]` of intermediate.dense and the same columns of output.dense."""
    sizes = {len(v) for v in keep.values()}
    if len(sizes) != 1:
        raise UserError("FFN pruning must keep the same number of neurons in every layer")
    for i, layer in enumerate(model.base_model.encoder.layer):
        idx = keep[i]
        inter, out = layer.intermediate.dense, layer.output.dense
        new_inter = torch.nn.Linear(inter.in_features, len(idx))
        new_inter.weight.data = inter.weight.data[idx].clone()
        new_inter.bias.data = inter.bias.data[idx].clone()
        new_out = torch.nn.Linear(len(idx), out.out_features)
        new_out.weight.data = out.weight.data[:, idx].clone()
        new_out.bias.data = out.bias.data.clone()
        layer.intermediate.dense, layer.output.dense = new_inter, new_out
    model.config.intermediate_size = sizes.pop()


def drop_layers_(model, drop: list[int]) -> None:
    """Remove whole encoder layers; pruned-head records follow the renumbering."""
    encoder = model.base_model.encoder
    n = len(encoder.layer)
    bad = [i for i in drop if not 0 <= i < n]
    if bad or len(set(drop)) >= n:
        raise UserError(f"--drop-layers: {drop} is not a proper subset of layers 0..{n - 1}")
    kept = [i for i in range(n) if i not in set(drop)]
    encoder.layer = torch.nn.ModuleList(encoder.layer[i] for i in kept)
    old = {int(k): v for k, v in (model.config.pruned_heads or {}).items()}
    model.config.pruned_heads = {new: old[i] for new, i in enumerate(kept) if i in old}
    model.config.num_hidden_layers = len(kept)


def heads_per_layer(model) -> list[int]:
    return [layer.attention.self.num_attention_heads for layer in model.base_model.encoder.layer]
