"""The one training loop. Fine-tuning, distillation, pruning recovery and
pretraining differ only in the loss and the data they pass in.

    result = train(model, features, loss_fn, cfg, collate=..., evaluate=..., metric="accuracy",
                   checkpoint_dir=work / "checkpoint")

- AdamW (no decay on biases and LayerNorm), linear warmup then linear decay;
- gradient accumulation and clipping; bf16 autocast on a GPU that has it,
  fp16 with a gradient scaler when asked;
- evaluation every N steps, early stopping, and the best weights kept;
- checkpoints with everything an exact resume needs: weights, optimizer,
  scheduler, RNG states, the data position and the best-so-far. On the CPU
  with a fixed seed a resumed run ends bit-identical to an uninterrupted one.

The data order is a pure function of (seed, epoch), so the position is just
(epoch, micro-batch index) and a resume needs no replay.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from tqdm.auto import tqdm

from edgebert.config import TrainConfig
from edgebert.data.features import length
from edgebert.errors import UserError
from edgebert.kinds.base import MAX_AUTO_EPOCHS

LossFn = Callable[[torch.nn.Module, dict], dict]
"""(model, batch) -> {"loss": tensor, other named scalars to log}."""


@dataclass
class TrainResult:
    steps: int
    seconds: float
    """Wall time of this process's part of the training (a resume counts from the resume)."""
    best_metric: float | None = None
    best_step: int | None = None
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)
    """One entry per evaluation: step, epoch, train loss, dev metrics."""
    ranks: int = 1
    """Processes that trained together (torchrun + DistributedDataParallel)."""
    ranks_in_sync: bool | None = None
    """Under DDP: every rank ended with the same weights (checked by all-gather)."""
    checkpoint_writers: int = 0
    """Ranks that wrote a checkpoint (1 under DDP: rank 0 only)."""
    precision: str = "fp32"
    """What the forward and backward passes ran in: fp32, or bf16 / fp16 autocast."""


@dataclass
class _State:
    """What, besides tensors, a checkpoint must hold to resume exactly."""

    step: int = 0
    epoch: int = 0
    micro: int = 0
    """Next micro-batch index within the epoch."""
    best_metric: float | None = None
    best_step: int | None = None
    best_tiebreak: float | None = None
    bad_evals: int = 0
    history: list[dict] = field(default_factory=list)


def pick_device(cfg: TrainConfig) -> torch.device:
    """The device `cfg.device` names; `check_device` has refused what cannot run."""
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    # under torchrun, each rank its own GPU
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def check_device(cfg: TrainConfig) -> None:
    """Refuse, before any work, a device or precision this machine cannot run."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to PyTorch "
                        f"(torch {torch.__version__}); use --device cpu or auto")
    device = pick_device(cfg)
    if device.type != "cuda":
        return
    if device.index >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {device.index}: only {torch.cuda.device_count()} GPU(s) "
                        "visible on this node; start fewer processes per node")
    if cfg.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16; "
                        "use --precision fp16 or auto")


def preflight(cfg) -> None:
    """Before a training stage does any work: refuse a device or precision this machine
    cannot run and, under torchrun, a world whose ranks were started with different
    options (every rank must train the same model on the same data; each raises the
    same one-line error naming the first option that differs)."""
    check_device(cfg.train)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as dist

    distributed(pick_device(cfg.train))
    options = asdict(cfg)
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, options)
    for rank, theirs in enumerate(gathered):
        diff = _first_difference(gathered[0], theirs)
        if diff:
            # leave the group before exiting: a live gloo group torn down at interpreter
            # exit can abort the process (SIGABRT) instead of exiting 2
            dist.destroy_process_group()
            raise UserError(f"torchrun: rank {rank} was started with {diff[0]} {diff[2]!r}, "
                            f"rank 0 with {diff[1]!r}; start every rank with the same command")


def _first_difference(a: dict, b: dict) -> tuple[str, object, object] | None:
    """(option, a's value, b's value) of the first field that differs; nested configs
    (`train`) are flat options on the command line."""
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found = _first_difference(x, y)
            if found:
                return found
        elif x != y:
            return f"--{key.replace('_', '-')}", x, y
    return None


def distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size): under `torchrun` (WORLD_SIZE > 1) the process group is set up
    once, NCCL on GPUs, gloo on the CPU; a plain run is (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def epochs_for(cfg: TrainConfig, n: int, cap: float = MAX_AUTO_EPOCHS) -> float:
    """cfg.epochs, raised until cfg.min_examples examples are seen, and on a training set of
    n < min_examples examples to (min_examples / n) ** cfg.epoch_growth passes; at most
    cfg.max_auto_epochs (default `cap`, the task kind's `max_auto_epochs`).

    >>> cfg = TrainConfig(epochs=1.0, min_examples=10000)
    >>> epochs_for(cfg, 4000), epochs_for(cfg, 2000), epochs_for(cfg, 20000)
    (2.5, 3.0, 1.0)
    >>> epochs_for(cfg, 2000, cap=10.0)
    5.0
    >>> grown = TrainConfig(epochs=1.0, min_examples=10000, epoch_growth=2, max_auto_epochs=10.0)
    >>> epochs_for(grown, 5000), epochs_for(grown, 2000), epochs_for(grown, 12000)
    (4.0, 10.0, 1.0)
    """
    if not cfg.min_examples:
        return cfg.epochs
    ratio = cfg.min_examples / max(n, 1)
    wanted = ratio ** cfg.epoch_growth if ratio > 1 else ratio  # growth only below the size
    return max(cfg.epochs, min(cfg.max_auto_epochs or cap, wanted))


PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """None means full fp32."""
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "fp16":
        return torch.float16
    if cfg.precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    # auto on a CPU: bf16 where AMX-BF16 runs its matrix products (a distillation step of the
    # default 3-layer student: 1.49x faster than fp32 on a Xeon with AMX); fp32 elsewhere,
    # where bf16 autocast is emulated or unmeasured (AVX512-BF16 alone)
    from edgebert.cpu import cpu_flags

    return torch.bfloat16 if "amx_bf16" in cpu_flags()["flags"] else None


def train(model: torch.nn.Module, features: list[dict], loss_fn: LossFn, cfg: TrainConfig, *,
          collate: Callable[[list[dict]], dict], evaluate: Callable[[], dict] | None = None,
          metric: str | None = None, greater_is_better: bool = True,
          tiebreak: str | None = None, checkpoint_dir: Path | None = None, desc: str = "train",
          after_step: Callable[[int, int], None] | None = None,
          select_after: float = 0.0,
          max_auto_epochs: float = MAX_AUTO_EPOCHS) -> TrainResult:
    """Train `model` in place on `features`; at the end it holds the best weights seen.

    `after_step(step, total)` runs after every optimizer step (pruning uses it).
    `select_after`: evaluations before this fraction of the steps neither become the best
    weights nor count towards patience (gradual pruning: the model is not final yet).
    `max_auto_epochs`: how far `cfg.min_examples` may raise the epochs (see `epochs_for`).
    `tiebreak`: a dev score, lower is better, that makes an evaluation whose `metric` equals
    the best so far an improvement (new best weights, patience reset) when it is lower.

    >>> # result = train(model, feats, lambda m, b: {"loss": m(**b).loss}, TrainConfig(),
    >>> #                collate=lambda fs: collate(fs, pad_id=0))
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    model.to(device)
    rank, world = distributed(device)
    net = model  # what the loss calls: the DDP wrapper syncs gradients across ranks
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    amp = autocast_dtype(cfg, device)
    # a micro-batch is batch_size examples on each rank: world * batch_size in all
    micro_per_epoch = math.ceil(len(features) / (cfg.batch_size * world))
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    epochs = epochs_for(cfg, len(features), max_auto_epochs)
    if epochs != cfg.epochs and not cfg.max_steps and rank == 0:
        tqdm.write(f"[{desc}] {len(features):,} training examples: {epochs:.2f} epochs instead "
                   f"of {cfg.epochs:g} (--min-examples {cfg.min_examples:,}, --epoch-growth "
                   f"{cfg.epoch_growth:g})")
    total = cfg.max_steps or max(1, math.ceil(epochs * steps_per_epoch))
    eval_every = cfg.eval_every or steps_per_epoch
    save_every = cfg.save_every or eval_every

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    optimizer = _adamw(model, cfg, device)
    warm = int(cfg.warmup * total)
    def schedule(s):
        return s / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm))

    # groups marked constant (learned pruning's gates and multipliers, as CoFi trains them)
    # warm up and then hold their rate: a decayed rate would freeze the size short of its
    # target
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [
        (lambda s: min(1.0, schedule(s)) if s < warm else 1.0) if g.get("constant") else schedule
        for g in optimizer.param_groups])
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    state = _State()
    best_weights: dict[str, torch.Tensor] | None = None
    if checkpoint_dir is not None:
        found = _load_checkpoint(checkpoint_dir, model, optimizer, scheduler, scaler)
        if found:
            state, best_weights = found

    start = time.perf_counter()
    # In a log file (CI, nohup) a bar redrawn every second is noise: update every 30 s.
    interactive = sys.stderr.isatty()
    bar = tqdm(total=total, initial=state.step, desc=desc, unit="step", dynamic_ncols=True,
               mininterval=1.0 if interactive else 30.0,
               disable=os.environ.get("EDGEBERT_QUIET") == "1" or rank != 0)
    model.train()
    running, seen = 0.0, 0  # mean train loss since the last evaluation
    stop = state.step >= total
    wrote = False
    while not stop:  # one pass per epoch, each in its own order
        epoch = state.epoch
        order = torch.randperm(len(features), generator=torch.Generator().manual_seed(
            cfg.seed * 100_003 + state.epoch)).tolist()
        if cfg.group_by_length:
            order = _group_by_length(order, features, cfg.batch_size * world,
                                     torch.Generator().manual_seed(cfg.seed * 7 + state.epoch))
        if world > 1:  # every rank needs a full micro-batch at every step: wrap around
            order += order[:micro_per_epoch * cfg.batch_size * world - len(order)]
        # until the epoch ends (state.epoch moves on, state.micro back to 0): a loop on
        # state.micro alone would carry on through the next epoch in this epoch's order, and
        # a run resumed there would draw the next epoch's order and train on other batches
        while state.epoch == epoch and not stop:
            group_end = min(micro_per_epoch, state.micro + cfg.grad_accum)
            n_micro = group_end - state.micro
            for m in range(state.micro, group_end):
                # rank r reads its own slice of each global micro-batch
                first = (m * world + rank) * cfg.batch_size
                idx = order[first:first + cfg.batch_size]
                batch = {k: v.to(device) for k, v in collate([features[i] for i in idx]).items()}
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    out = loss_fn(net, batch)
                scaler.scale(out["loss"] / n_micro).backward()
                running += float(out["loss"].detach()) / n_micro
            seen += 1
            if cfg.max_grad_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state.step += 1
            if after_step is not None:  # e.g. pruning masks re-applied to the new weights
                after_step(state.step, total)
            state.micro = group_end
            if state.micro >= micro_per_epoch:
                state.epoch, state.micro = state.epoch + 1, 0
            bar.update(1)
            # refresh=False: redraw at tqdm's interval (30 s in a log file), not every step
            bar.set_postfix(loss=f"{running / max(seen, 1):.4f}",
                            lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            stop = state.step >= total
            if evaluate and (state.step % eval_every == 0 or stop):
                scores = _evaluate(model, evaluate)
                entry = {"step": state.step, "epoch": round(state.step / steps_per_epoch, 3),
                         "train_loss": running / max(seen, 1)} | scores
                state.history.append(entry)
                running, seen = 0.0, 0
                eligible = state.step >= select_after * total
                value = scores[metric] if metric and eligible else None
                tie = scores.get(tiebreak) if tiebreak else None
                if value is not None and _better(value, tie, state.best_metric,
                                                 state.best_tiebreak, greater_is_better):
                    state.best_metric, state.best_step, state.bad_evals = value, state.step, 0
                    state.best_tiebreak = tie
                    best_weights = {k: v.detach().to("cpu", copy=True)
                                    for k, v in model.state_dict().items()}
                elif value is not None:
                    state.bad_evals += 1
                if rank == 0:
                    bar.write(f"[{desc}] step {state.step}/{total}: "
                              + ", ".join(f"{k} {v:.4f}" for k, v in entry.items()
                                          if isinstance(v, float)))
                if cfg.patience and state.bad_evals >= cfg.patience:
                    bar.write(f"[{desc}] no better {metric}"
                              + (f" (nor lower {tiebreak} at an equal one)" if tiebreak else "")
                              + f" in {cfg.patience} evaluations: "
                              f"stopping early at step {state.step}")
                    stop = True
            if checkpoint_dir is not None and (state.step % save_every == 0 or stop):
                if rank == 0:  # one writer; the others wait so none reads a half checkpoint
                    _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, scaler, state,
                                     best_weights)
                    wrote = True
                if world > 1:
                    torch.distributed.barrier()
    bar.close()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return TrainResult(state.step, time.perf_counter() - start, state.best_metric,
                       state.best_step, stopped_early=state.step < total, history=state.history,
                       ranks=world, precision=PRECISION_NAMES[amp], **(_gather_checks(model, wrote) if world > 1 else
                                       {"checkpoint_writers": int(wrote)}))


def _better(value: float, tie: float | None, best: float | None, best_tie: float | None,
            greater_is_better: bool) -> bool:
    """Is an evaluation better than the best so far: its metric is, or the metric ties
    and the tie-break score (lower is better) is lower.

    >>> _better(0.98, 0.10, 0.98, 0.12, True), _better(0.98, 0.13, 0.98, 0.12, True)
    (True, False)
    >>> _better(0.99, None, 0.98, 0.10, True), _better(0.98, None, 0.98, 0.12, True)
    (True, False)
    """
    if best is None:
        return True
    if value != best:
        return value > best if greater_is_better else value < best
    return tie is not None and best_tie is not None and tie < best_tie


def _gather_checks(model: torch.nn.Module, wrote: bool) -> dict:
    """Under DDP: do all ranks hold the same weights (a checksum of every parameter), and
    how many ranks wrote checkpoints."""
    import torch.distributed as dist

    # on the model's device: NCCL gathers GPU tensors
    local = torch.stack([p.detach().double().sum() for p in model.parameters()]
                        + [torch.tensor(float(wrote), dtype=torch.double,
                                        device=next(model.parameters()).device)])
    gathered = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    return {"ranks_in_sync": all(torch.equal(g[:-1], gathered[0][:-1]) for g in gathered),
            "checkpoint_writers": int(sum(float(g[-1]) for g in gathered))}


def _group_by_length(order: list[int], features: list[dict], batch: int,
                     generator: torch.Generator) -> list[int]:
    """Within windows of 50 batches of the shuffled order, sort by length; then shuffle
    whole batches, so each batch pads to a similar length and the order stays random."""
    window = 50 * batch
    sorted_order = []
    for i in range(0, len(order), window):
        chunk = order[i:i + window]
        sorted_order += sorted(chunk, key=lambda j: -length(features[j]))
    batches = [sorted_order[i:i + batch] for i in range(0, len(sorted_order), batch)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [j for b in perm for j in batches[b]]


def _adamw(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW in up to four groups: decay or not (biases and norms), encoder or head (the
    parameters outside every transformers model's `base_model`, at `head_lr` when it is
    set; a wrapper such as distillation's is searched too), and one per `own_lr` of a
    module that sets one (undecayed, its rate held after warm-up). Each group's `lr` is its
    peak; the scheduler scales the others by the same factor."""
    encoder = {id(p) for m in model.modules() if hasattr(m, "base_model_prefix")
               for p in m.base_model.parameters()}
    # a module with `own_lr` (learned pruning's masks and Lagrange multipliers) trains at
    # that peak rate, undecayed: gates and multipliers, not weights
    own = {id(p): m.own_lr for m in model.modules() if hasattr(m, "own_lr")
           for p in m.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    own_groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) in own:
            own_groups.setdefault(own[id(p)], []).append(p)
        elif p.requires_grad:
            decays = not (p.ndim < 2 or "LayerNorm" in name or "norm" in name)
            head = cfg.head_lr is not None and id(p) not in encoder
            groups.setdefault((decays, head), []).append(p)
    params = [{"params": ps, "weight_decay": cfg.weight_decay if decays else 0.0,
               "lr": cfg.head_lr if head else cfg.lr}
              for (decays, head), ps in groups.items()]
    params += [{"params": ps, "weight_decay": 0.0, "lr": lr, "constant": True}
               for lr, ps in own_groups.items()]
    # fused AdamW is one kernel per step on a GPU; on the CPU foreach is the fast path.
    return torch.optim.AdamW(params, lr=cfg.lr, fused=device.type == "cuda")


def _evaluate(model: torch.nn.Module, evaluate: Callable[[], dict]) -> dict:
    model.eval()
    try:
        with torch.no_grad():
            return evaluate()
    finally:
        model.train()


# ------------------------------------------------------------------ checkpoints


def _save_checkpoint(path: Path, model, optimizer, scheduler, scaler, state: _State,
                     best_weights: dict | None) -> None:
    """Write to `<path>.tmp`, then swap it in: a kill at any point leaves a whole checkpoint."""
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    if best_weights is not None:
        from safetensors.torch import save_file
        # clone: tied weights share storage, which save_file refuses
        save_file({k: v.clone().contiguous() for k, v in best_weights.items()},
                  str(tmp / "best.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict()}, tmp / "optim.pt")
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
    _fsync_dir(tmp)
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def _load_checkpoint(path: Path, model, optimizer, scheduler, scaler):
    """Restore the newest whole checkpoint, if any: (state, best weights) or None."""
    old = path.with_name(path.name + ".old")
    src = path if (path / "state.json").exists() else old if (old / "state.json").exists() else None
    if src is None:
        return None
    load_model(model, str(src / "model.safetensors"), device=str(next(model.parameters()).device))
    # weights_only: our own files, but never unpickle arbitrary objects
    opt = torch.load(src / "optim.pt", weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    scaler.load_state_dict(opt["scaler"])
    rng = torch.load(src / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    random.setstate(_as_tuple(rng["python"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = _State(**json.loads((src / "state.json").read_text()))
    best = None
    if (src / "best.safetensors").exists():
        from safetensors.torch import load_file
        best = load_file(str(src / "best.safetensors"))
    tqdm.write(f"resuming from {src} at step {state.step}")
    return state, best


def _as_tuple(x):
    return tuple(_as_tuple(i) for i in x) if isinstance(x, (list, tuple)) else x
