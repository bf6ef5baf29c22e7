"""First-order importance of attention heads and FFN neurons on training batches.

Heads: Michel et al. (2019): |d loss / d mask_h| with a head mask of ones,
accumulated over batches, then L2-normalised within each layer.
FFN neurons: |activation * d loss / d activation| at the intermediate output
(a Taylor estimate of the loss change when the neuron is removed).
"""

from __future__ import annotations

import torch


def importance(model, batches: list[dict]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(head importance [layers, heads], FFN importance per layer [intermediate]).

    The model must use eager attention (SDPA ignores a head mask).
    """
    cfg = model.config
    layers = model.base_model.encoder.layer
    head_mask = torch.ones(cfg.num_hidden_layers, cfg.num_attention_heads, requires_grad=True)
    ffn = [torch.zeros(layer.intermediate.dense.out_features) for layer in layers]
    acts: dict[int, torch.Tensor] = {}

    def keep(i):
        def hook(_module, _inputs, output):
            output.retain_grad()
            acts[i] = output
        return hook

    handles = [layer.intermediate.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()  # no dropout: importance of the model as it will run
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            model(**batch, head_mask=head_mask).loss.backward()
            for i, a in acts.items():
                ffn[i] += (a * a.grad).abs().sum(dim=(0, 1)).detach()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    heads = head_mask.grad.abs()
    heads = heads / heads.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return heads, ffn
