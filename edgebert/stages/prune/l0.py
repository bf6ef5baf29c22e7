"""Learned structured pruning: hard-concrete (L0) masks over an encoder's layers, attention
blocks, heads, FFN blocks and FFN neurons, a Lagrangian that drives the masks' expected size
to a target, and the cut that applies them (CoFi: Xia, Zhong and Chen, ACL 2022).

Each mask is a hard-concrete gate (Louizos et al. 2018): z = min(1, max(0, s (r - l) + l)),
s = sigmoid((log u - log(1 - u) + log_alpha) / beta), u ~ U(0, 1); exactly 0 or 1 with
non-zero probability, and differentiable in log_alpha. The groups, per layer i:

    layer[i]     the whole layer: y = x + z (layer(x) - x); at 0 the layer is the identity
    mha[i]       every head of the layer at once   } scale the heads' context vectors, the
    heads[i, h]  one head                          } input of the attention's output projection
    ffn[i]       the whole FFN                     } scale the FFN's activations, the input
    neurons[i,f] one FFN neuron                    } of its second Linear

They sit on hooks at the places `families` names for every family, so the masked model is
the family's own module. A masked-out head or block still adds its projection's bias
(its LayerNorm stays): exactly what the cut model computes, so a cut model gives the masked
model's outputs. Hidden dimensions are not masked: a family's embeddings, LayerNorms and
head would all need cutting, which `families` does not declare.

    >>> # masks = Masks(model); summary = apply_(model, masks)
"""

from __future__ import annotations

import math

import torch

from edgebert.families import family_of, get
from edgebert.stages.prune.structured import drop_layers_, prune_ffn_, prune_heads_

LIMIT_L, LIMIT_R, BETA = -0.1, 1.1, 2 / 3
"""The hard-concrete stretch (l, r) and temperature (beta), as in Louizos et al. and CoFi."""
INIT_KEEP = 0.95
"""Each mask's probability of being non-zero at the start: high, so that the masked model
starts close to the model it prunes (three nested gates keep a neuron with 0.95^3 = 0.86)."""
GROUPS = ("layer", "mha", "heads", "ffn", "neurons")


def keep_probability(log_alpha: torch.Tensor) -> torch.Tensor:
    """P(z > 0) of each hard-concrete gate: 1 - Q(0)."""
    return torch.sigmoid(log_alpha - BETA * math.log(-LIMIT_L / LIMIT_R))


def sample(log_alpha: torch.Tensor) -> torch.Tensor:
    """One draw of each gate, differentiable in log_alpha (torch's RNG: a resumed run
    draws the same)."""
    u = torch.rand_like(log_alpha).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((u.log() - (1 - u).log() + log_alpha) / BETA)
    return (s * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0, 1)


class _Ascend(torch.autograd.Function):
    """Identity forward, negated gradient backward: a minimising optimizer then does gradient
    ascent on what passes through (the Lagrange multipliers)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Masks(torch.nn.Module):
    """The masks of one model, hooked into it, and the Lagrangian on their expected size.

    `own_lr` is read by `edgebert.train` (its parameters train at that peak rate, without
    weight decay). A model in training mode gets the draw of the last `resample()`; in eval
    mode, the deterministic masks.
    """

    def __init__(self, model, lr: float = 0.01):
        super().__init__()
        self.own_lr = lr
        family = family_of(model)
        layers = family.layer_list(model)
        self.shared = family.shared_layers  # ALBERT: one layer run n times, no layer gates
        self.heads = [family.heads(layer) for layer in layers]
        self.width = get(layers[0], family.ffn[1]).in_features
        hidden = get(family.attention_module(layers[0]), family.qkv[0]).in_features
        size = [family.head_size(layer) for layer in layers]
        # parameters per unit: a head's q, k, v rows (and biases) and output columns; a
        # neuron's row (and bias) of the first FFN Linear and column of the second
        self.head_params = [4 * hidden * s + 3 * s for s in size]
        self.neuron_params = 2 * hidden + 1
        self.full = sum(h * p for h, p in zip(self.heads, self.head_params)) \
            + len(layers) * self.width * self.neuron_params
        start = math.log(INIT_KEEP / (1 - INIT_KEEP)) + BETA * math.log(-LIMIT_L / LIMIT_R)
        n = len(layers)
        shapes = {"layer": 0 if self.shared else n, "mha": n, "heads": sum(self.heads),
                  "ffn": n, "neurons": n * self.width}
        self.log_alpha = torch.nn.ParameterDict(
            {g: torch.nn.Parameter(torch.full((k,), start)) for g, k in shapes.items()})
        self.lambdas = torch.nn.Parameter(torch.zeros(2))
        """CoFi's lambda_1, lambda_2 of lambda_1 (s - t) + lambda_2 (s - t)^2."""
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("total", torch.zeros((), dtype=torch.long))
        with torch.no_grad():  # the warm-up starts where the masks start
            self.start = float(self.expected_sparsity())
        self._drawn: dict[str, torch.Tensor] = {}
        self._fixed: dict = {}
        self.target_now = 0.0
        """The target of the last `lagrangian` call: what deterministic masks cut to."""
        self._handles = _hook(model, family, layers, self)

    # -- the gates

    def resample(self) -> None:
        """A new draw for the next training forward."""
        self._drawn = {g: sample(a) for g, a in self.log_alpha.items()}

    def values(self, training: bool) -> dict[str, torch.Tensor]:
        """The draw (a model in training mode) or the deterministic masks (in eval mode: the
        hooked module's own mode decides, as scoring puts the model alone in eval mode)."""
        if training:
            if not self._drawn:
                self.resample()
            return self._drawn
        return self.deterministic()

    def deterministic(self, sparsity: float | None = None) -> dict[str, torch.Tensor]:
        """0/1 masks at `sparsity` (default: the current target, `target_now`). A layer,
        attention-block or FFN-block gate stays open where it is more likely open than not
        (the likeliest layer always); then the head and neuron gates most likely open, over
        every layer at once (one threshold on log_alpha), as few as keep at least
        1 - sparsity of the parameters (all of them where the blocks kept hold less).

        CoFi rounds every group to its expected count instead; a Lagrangian still swinging
        about its target at the end of a short run would then decide the size. Here the
        masks decide what goes and the target how much."""
        sparsity = self.target_now if sparsity is None else sparsity
        key = (sparsity, *(a._version for a in self.log_alpha.values()))
        if self._fixed.get("key") != key:
            self._fixed = {"key": key, "z": self._fit(sparsity)}
        return self._fixed["z"]

    def _fit(self, sparsity: float) -> dict[str, torch.Tensor]:
        alphas = {g: a.detach() for g, a in self.log_alpha.items()}
        z = {g: (keep_probability(alphas[g]) > 0.5).float() for g in ("layer", "mha", "ffn")}
        if not self.shared:
            z["layer"][alphas["layer"].argmax()] = 1.0
        fine = torch.cat([alphas["heads"], alphas["neurons"]])
        order = fine.argsort(descending=True, stable=True)
        split = alphas["heads"].numel()

        def top(k: int) -> dict[str, torch.Tensor]:
            chosen = torch.zeros_like(fine)
            chosen[order[:k]] = 1.0
            return z | {"heads": chosen[:split], "neurons": chosen[split:]}

        need = (1 - sparsity) * self.full
        lo, hi = 0, len(fine)  # the kept size grows with k: the least k that keeps `need`
        while lo < hi:
            mid = (lo + hi) // 2
            if float(self.size(top(mid))) >= need:
                hi = mid
            else:
                lo = mid + 1
        return top(lo)

    def per_layer(self, z: dict[str, torch.Tensor]) -> tuple[list, list, list]:
        """(layer gate, head gates, neuron gates) of each layer, the block gates folded in."""
        n = len(self.heads)
        layer = [z["layer"][i] if not self.shared else None for i in range(n)]
        heads = [h * z["mha"][i] for i, h in enumerate(z["heads"].split(self.heads))]
        neurons = [f * z["ffn"][i] for i, f in enumerate(z["neurons"].view(n, self.width))]
        return layer, heads, neurons

    # -- the size

    def size(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Head and neuron parameters kept, given each gate's keep probability (or 0/1)."""
        layer, heads, neurons = self.per_layer(p)
        kept = [(h * self.head_params[i]).sum() + neurons[i].sum() * self.neuron_params
                for i, h in enumerate(heads)]
        return sum(k * (layer[i] if layer[i] is not None else 1) for i, k in enumerate(kept))

    def expected_sparsity(self) -> torch.Tensor:
        """1 - expected kept / all, in head and neuron parameters."""
        p = {g: keep_probability(a) for g, a in self.log_alpha.items()}
        return 1 - self.size(p) / self.full


    def target(self, sparsity: float, warmup: float) -> float:
        """The target at the current step: rising linearly over the first `warmup` share of
        the steps (CoFi's Lagrangian warm-up), then `sparsity`. It rises from the masks'
        own expected sparsity at the start (CoFi's, from 0, first pushes the masks the
        wrong way: up, towards keeping everything)."""
        ramp = warmup * float(self.total)
        done = min(1.0, float(self.step) / ramp) if ramp else 0.0
        return self.start + (sparsity - self.start) * done

    def lagrangian(self, target: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(lambda_1 (s - t) + lambda_2 (s - t)^2, s): minimised by the masks, maximised by
        the multipliers (their gradient is negated)."""
        self.target_now = target
        s = self.expected_sparsity()
        l1, l2 = _Ascend.apply(self.lambdas)
        gap = s - target
        return l1 * gap + l2 * gap * gap, s

    def at_step(self, step: int, total: int) -> None:
        """train's after_step: where the target warm-up stands (saved with the weights)."""
        self.step.fill_(step)
        self.total.fill_(total)

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _hook(model, family, layers, masks: Masks) -> list:
    """Scale each layer's heads (input of the attention's output projection), its FFN
    activations (input of the FFN's second Linear), and gate its output."""

    def heads(i):
        def hook(_module, inputs):
            context = inputs[0]  # [batch, seq, heads * head_size]
            z = masks.per_layer(masks.values(_module.training))[1][i].to(context.dtype)
            shaped = context.view(*context.shape[:-1], masks.heads[i], -1) * z[:, None]
            return (shaped.view_as(context), *inputs[1:])
        return hook

    def neurons(i):
        def hook(_module, inputs):
            z = masks.per_layer(masks.values(_module.training))[2][i].to(inputs[0].dtype)
            return (inputs[0] * z, *inputs[1:])  # [batch, seq, width] * [width]
        return hook

    def gate(i):
        def hook(_module, args, kwargs, output):
            x = args[0] if args else next(iter(kwargs.values()))  # the layer's input
            first = output[0] if isinstance(output, tuple) else output
            z = masks.values(_module.training)["layer"][i].to(first.dtype)
            y = x + z * (first - x)
            return (y, *output[1:]) if isinstance(output, tuple) else y
        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(get(layer, family.attention_out).register_forward_pre_hook(heads(i)))
        handles.append(get(layer, family.ffn[1]).register_forward_pre_hook(neurons(i)))
        if not family.shared_layers:
            handles.append(layer.register_forward_hook(gate(i), with_kwargs=True))
    return handles


def apply_(model, masks: Masks, sparsity: float | None = None) -> dict:
    """Cut what the deterministic masks at `sparsity` (default: the current target) removed,
    in place, so that the model computes what the masked model in eval mode computed, and
    take the masks' hooks off. Returns what was kept.

    Layers with a zero gate go (`drop_layers_`); heads with a zero gate are cut
    (`prune_heads_`: layers may keep different counts), a layer left with none keeps one
    whose output columns are zeroed (the attention then adds its bias alone, as masked);
    FFN neurons are cut to one width for every layer (a config holds one), the widest
    layer's: a layer that keeps fewer keeps its best masked-out ones too, their output
    columns zeroed, so they add nothing.
    """
    family = family_of(model)
    layers = family.layer_list(model)
    z = masks.deterministic(sparsity)
    gate, head_z, neuron_z = masks.per_layer(z)
    alive = [i for i in range(len(layers)) if gate[i] is None or float(gate[i]) > 0]
    alphas = masks.log_alpha["heads"].detach().split(masks.heads)
    ffn_alpha = masks.log_alpha["neurons"].detach().view(len(layers), masks.width)
    masks.remove_hooks()
    kept_heads, kept_ffn, cut = [], [], {}
    width = max(1, max(int(neuron_z[i].sum()) for i in alive))
    keep = {}
    with torch.no_grad():
        for i, layer in enumerate(layers):
            hz, fz = head_z[i] > 0, neuron_z[i] > 0
            kept_heads.append(int(hz.sum()) if i in alive else 0)
            kept_ffn.append(int(fz.sum()) if i in alive else 0)
            out = get(layer, family.attention_out)
            if not bool(hz.any()):  # no head left: keep the best one, contributing nothing
                best = int(alphas[i].argmax())
                size = family.head_size(layer)
                out.weight[:, best * size:(best + 1) * size] = 0
                hz = torch.zeros_like(hz)
                hz[best] = True
            cut[i] = [h for h in range(len(hz)) if not hz[h]]
            # the layer's own neurons first, then its best masked-out ones as zero padding
            order = sorted(range(masks.width), key=lambda f: (not bool(fz[f]), -float(ffn_alpha[i, f])))
            idx = torch.tensor(sorted(order[:width]))
            second = get(layer, family.ffn[1])
            pad = [int(f) for f in idx if not fz[f]]
            second.weight[:, pad] = 0
            keep[i] = idx
    prune_heads_(model, {i: h for i, h in cut.items() if h})
    prune_ffn_(model, keep)
    dropped = [i for i in range(len(layers)) if i not in alive]
    if dropped:
        drop_layers_(model, dropped)
    return {"layers_kept": alive, "layers_removed": dropped,
            "heads_per_layer": kept_heads, "ffn_per_layer": kept_ffn, "ffn_width": width,
            "sparsity": float(1 - masks.size(z) / masks.full),
            "expected_sparsity": float(masks.expected_sparsity().detach())}
