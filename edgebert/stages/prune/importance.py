"""First-order importance of attention heads and FFN neurons on training batches.

Heads: Michel et al. (2019): |d loss / d mask_h| with a head mask of ones,
accumulated over batches, then L2-normalised within each layer. The mask scales
each head's context vectors (a hook on the attention's output projection, the same
gradient as transformers' head_mask on the attention probabilities), so models
whose heads were pruned before, with fewer heads per layer, are ranked too.
FFN neurons: |activation * d loss / d activation| at the intermediate output
(a Taylor estimate of the loss change when the neuron is removed).
"""

from __future__ import annotations

import torch

from edgebert.families import family_of, get


def importance(model, batches: list[dict]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(head importance [layers, most heads in a layer], padded with inf where a layer has
    fewer heads; FFN importance per layer [width]). Hooks sit on the inputs of the
    attention's output projection (the heads' context vectors) and of the FFN's second
    Linear (the activations), where every family has them; a layer run several times
    (ALBERT's shared one) adds up over its repetitions."""
    family = family_of(model)
    layers = family.layer_list(model)
    counts = [family.heads(layer) for layer in layers]
    masks = [torch.ones(n, requires_grad=True) for n in counts]
    ffn = [torch.zeros(get(layer, family.ffn[1]).in_features) for layer in layers]
    acts: dict[int, list[torch.Tensor]] = {}

    def keep(i):
        def hook(_module, inputs):
            inputs[0].retain_grad()
            acts.setdefault(i, []).append(inputs[0])
        return hook

    def scale(i):
        def hook(_module, inputs):
            context = inputs[0]  # [batch, seq, heads * head_size]
            shaped = context.view(*context.shape[:-1], counts[i], -1) * masks[i][:, None]
            return (shaped.view_as(context), *inputs[1:])
        return hook

    handles = [get(layer, family.ffn[1]).register_forward_pre_hook(keep(i))
               for i, layer in enumerate(layers)]
    handles += [get(layer, family.attention_out).register_forward_pre_hook(scale(i))
                for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()  # no dropout: importance of the model as it will run
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            acts.clear()
            model(**batch).loss.backward()
            for i, seen in acts.items():
                for a in seen:
                    ffn[i] += (a * a.grad).abs().sum(dim=(0, 1)).detach()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    heads = torch.full((len(layers), max(counts)), float("inf"))
    for i, m in enumerate(masks):
        g = m.grad.abs() if m.grad is not None else torch.zeros(counts[i])
        heads[i, :counts[i]] = g / g.norm().clamp(min=1e-12)
    return heads, ffn
