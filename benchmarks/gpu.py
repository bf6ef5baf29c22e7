"""The teacher half on a GPU: MLM + NSP pretraining throughput and MFU, DDP's overhead,
and a short pretraining then fine-tuning, in one run of at most about 8 minutes.

    python benchmarks/gpu.py                         # -> store rows, suite gpu
    python benchmarks/gpu.py --corpus corpus/wordnet-base.txt --tokenizer runs/tok
                                                     # + pretrain -> fine-tune Rotten Tomatoes
    python benchmarks/gpu.py --tiny                  # the same code path on a CPU (tests)

Runs from the source tree on the machine's own torch and transformers (PYTHONPATH=.);
nothing is downloaded. What is carried is small: a corpus text file, a tokenizer
directory, and for the fine-tuning the Rotten Tomatoes asset in $EDGEBERT_CACHE. On a
machine that is not this checkout, EDGEBERT_BENCH_STORE=FILE collects the rows to bring
back and EDGEBERT_BENCH_COMMIT names the commit measured.

Rows (one run's share one date, each appended as its section ends, so a run cut short
keeps what it measured): `device` (the GPU, its nominal peak, the measured matmul
rate), one per shape timed (`bert-small`, `bert-base`, `bert-base compiled`; `tiny`),
`ddp_one_process`, and with --corpus `pretrain_then_finetune`. On a GPU the row's
machine is `cuda` with the GPU's name.

Model FLOPs of one training step (the formula MFU uses, as in PaLM, appendix B):
    6 * N * tokens  +  12 * layers * hidden * seq * tokens  +  per-sequence heads
where N counts the weights of every linear layer that runs once per token (attention
projections, FFN, the MLM transform and the vocabulary decoder), and the second term is
attention's two matmuls (QK^T and AV: 2 * 2 * seq * hidden flops per token and layer
forward, times 3 with the backward). The per-sequence pooler and NSP classifier count
6 * their weights per sequence. MFU = model FLOPs / step time / the GPU's dense bf16
peak (its datasheet figure, named in the output); a large bf16 matmul measured in the
same run is reported beside it, and MFU against that too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import store

HERE = Path(__file__).resolve().parent
SUITE = "gpu"
VOCAB = {"tiny": 2000}  # else 30522, BERT's uncased WordPiece
DENSE_BF16_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0,
                     "L40S": 362.1, "L4": 121.0, "A10": 125.0}
"""Datasheet dense (no sparsity) bf16 tensor-core peaks, matched by name, longest first."""


# ---------------------------------------------------------------- FLOPs

def per_token_params(model) -> int:
    """Weights of the linear layers that run once per token: the encoder's projections
    and FFN, the MLM transform and the decoder (the embedding lookup is no matmul)."""
    import torch

    skip = ("pooler", "seq_relationship")  # once per sequence, counted apart
    return sum(m.in_features * m.out_features for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and not any(s in name for s in skip))


def per_sequence_params(model) -> int:
    import torch

    return sum(m.in_features * m.out_features for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and ("pooler" in name
                                                       or "seq_relationship" in name))


def step_flops(model, batch: int, seq: int) -> float:
    """Model FLOPs of one training step (forward and backward) on batch x seq tokens."""
    c = model.config
    tokens = batch * seq
    return (6 * per_token_params(model) * tokens
            + 12 * c.num_hidden_layers * c.hidden_size * seq * tokens
            + 6 * per_sequence_params(model) * batch)


def nominal_peak(name: str) -> tuple[str, float] | tuple[None, None]:
    for key in sorted(DENSE_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return key, DENSE_BF16_TFLOPS[key]
    return None, None


# ---------------------------------------------------------------- timing

class Clock:
    """Wall time of GPU work without a host synchronisation inside the timed steps:
    CUDA events around them, one synchronise at the end."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def __enter__(self):
        if self.cuda:
            self.start = self.torch.cuda.Event(enable_timing=True)
            self.end = self.torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def matmul_tflops(device, n: int, iters: int) -> float:
    """A large bf16 (fp32 on CPU) matmul: what this GPU sustains, measured here."""
    import torch

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    with Clock(device) as clock:
        for _ in range(iters):
            a @ b
    return 2 * n ** 3 * iters / clock.seconds / 1e12


def synthetic_batch(batch: int, seq: int, vocab: int, device, seed: int = 0) -> dict:
    """Full sequences (no padding to waste compute on): two segments, 15 % of positions
    masked with labels, random next-sentence labels."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)  # past the special tokens
    labels = torch.where(torch.rand(batch, seq, generator=g) < 0.15, ids, -100)
    types = (torch.arange(seq) >= seq // 2).long().expand(batch, seq)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "token_type_ids": types.contiguous().to(device), "labels": labels.to(device),
            "next_sentence_label": torch.randint(0, 2, (batch,), generator=g).to(device)}


def build(shape: str, device):
    import torch
    from transformers import BertConfig, BertForPreTraining

    from edgebert.stages.pretrain.stage import SHAPES  # `edgebert pretrain --config`'s shapes

    config = BertConfig(vocab_size=VOCAB.get(shape, 30522), **SHAPES[shape])
    config._attn_implementation = "sdpa"  # fused attention kernels (flash on recent GPUs)
    torch.manual_seed(0)
    return BertForPreTraining(config).to(device)


def throughput(shape: str, batch: int, seq: int, steps: int, warmup: int, device,
               compile_: bool = False, ddp: bool = False) -> dict:
    """Time `steps` optimizer steps of MLM + NSP pretraining (bf16 autocast on a GPU,
    fused AdamW, SDPA attention)."""
    import torch

    model = build(shape, device)
    vocab = model.config.vocab_size
    flops = step_flops(model, batch, seq)
    params = sum(p.numel() for p in model.parameters())
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                        else None)
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    data = synthetic_batch(batch, seq, vocab, device)
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = step_model(**data).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for _ in range(warmup):  # compiles here when asked
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warm_s = time.perf_counter() - started
    with Clock(device) as clock:
        for _ in range(steps):
            step()
    step_s = clock.seconds / steps
    out = {"shape": shape, "params": params, "batch": batch, "seq": seq, "steps": steps,
           "compiled": compile_, "ddp": ddp, "precision": "bf16" if dtype else "fp32",
           "step_ms": 1000 * step_s, "tokens_per_s": batch * seq / step_s,
           "model_tflops_per_step": flops / 1e12, "achieved_tflops": flops / step_s / 1e12,
           "warmup_seconds": warm_s}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return out


def ddp_overhead(shape: str, batch: int, seq: int, steps: int, warmup: int, tiny: bool) -> dict:
    """The same step under torchrun with one process (DDP wrapping, its gradient hooks)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
               "--master-port", "29517", str(Path(__file__).resolve()), "--ddp-worker", shape,
               "--batch", str(batch), "--seq", str(seq), "--steps", str(steps),
               "--warmup", str(warmup), "--worker-out", str(out)] + (["--tiny"] if tiny else [])
        res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {
            "PYTHONPATH": str(HERE.parent)})
        if res.returncode != 0:
            return {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
        return json.loads(out.read_text())


def pretrain_then_finetune(corpus: str, tokenizer: str, shape: str, steps: int,
                           finetune_steps: int | None, work: Path) -> dict:
    """A short `edgebert pretrain` of `shape` on the carried corpus, then `edgebert
    finetune` on Rotten Tomatoes of it and of the same shape from random weights: the
    chain's own commands, on the GPU."""
    from pretrain_cpu import random_init

    edgebert = [sys.executable, "-m", "edgebert.cli"]
    # the source tree, for a machine where edgebert is not installed
    env = os.environ | {"PYTHONPATH": str(HERE.parent), "EDGEBERT_QUIET": "1"}

    def run(args: list[str]) -> float:
        return common.run(edgebert + args, env=env, capture=True)

    finetune = ["--task", "rotten-tomatoes", "--lr", "2e-4", "--batch-size", "32",
                "--max-length", "64", "--eval-every", "50", "--patience", "4"]
    finetune += ["--max-steps", str(finetune_steps)] if finetune_steps else ["--epochs", "2"]
    try:
        out = {"shape": shape, "pretrain_steps": steps, "finetune_command": finetune,
               "pretrain_seconds": run(["pretrain", "--corpus", corpus, "--tokenizer", tokenizer,
                                        "--config", shape, "--max-steps", str(steps),
                                        "--batch-size", "256", "--eval-every", str(steps),
                                        "--out", str(work / "pretrained")])}
        pre = json.loads((work / "pretrained" / "metrics.json").read_text())
        out["heldout"], out["before"] = pre["heldout"], pre["before"]
        out["pretrain_tokens_per_s"] = (pre["train"]["steps"] * pre["train"]["tokens_per_step"]
                                        / out["pretrain_seconds"])
        random = random_init(Path(tokenizer), work / "random", shape)
        for name, model in (("pretrained", work / "pretrained"), ("random", random)):
            seconds = run(["finetune", "--model", str(model), *finetune,
                           "--out", str(work / f"rt_{name}")])
            m = json.loads((work / f"rt_{name}" / "metrics.json").read_text())
            out[name] = {"finetune_seconds": seconds, "test_accuracy": m["test"]["accuracy"],
                         "test_examples": m["test"].get("examples"),
                         "dev_accuracy": m["dev"]["accuracy"]}
    except RuntimeError as e:
        out = locals().get("out", {}) | {"error": str(e)}
    return out


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny shapes, few steps (CPU test)")
    p.add_argument("--batch", type=int, default=None, help="sequences per step")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--corpus", help="text file for the pretrain -> fine-tune section")
    p.add_argument("--tokenizer", help="tokenizer directory for that section")
    p.add_argument("--pretrain-shape", default="bert-small")
    p.add_argument("--pretrain-steps", type=int, default=600)
    p.add_argument("--finetune-steps", type=int, default=None, help="default: 2 epochs")
    p.add_argument("--shapes", default="bert-small,bert-base")
    p.add_argument("--no-ddp", action="store_true", help="skip the torchrun section")
    p.add_argument("--ddp-worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = a.steps or (2 if a.tiny else 20)
    warmup = a.warmup or (1 if a.tiny else 5)
    if a.ddp_worker:  # one rank of ddp_overhead's torchrun
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        res = throughput(a.ddp_worker, a.batch, a.seq, steps, warmup, device, ddp=True)
        torch.distributed.destroy_process_group()
        Path(a.worker_out).write_text(json.dumps(res))
        return res
    shapes = ["tiny"] if a.tiny else a.shapes.split(",")
    batch = a.batch or (4 if a.tiny else 256)  # 32k tokens a step: a pretraining micro-batch
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak_name, peak = nominal_peak(name)
    date = store.now()
    command = common.script_command(__file__, argv)
    gpu = {"machine": "cuda", "gpu": name} if device.type == "cuda" else {}

    def save(case: str, metrics: dict) -> None:
        """One section's row, appended as it ends: a run cut short keeps what it measured."""
        common.record(SUITE, {case: metrics}, command=command, machine=gpu, date=date)

    result = {"device": {"device": name,
                         "bf16": device.type == "cuda" and torch.cuda.is_bf16_supported(),
                         "nominal_dense_bf16_tflops": peak, "nominal_from": peak_name,
                         "matmul_tflops": matmul_tflops(device, 256 if a.tiny else 8192,
                                                        2 if a.tiny else 50),
                         "notes": {"flops_formula": "6*N*tokens + 12*layers*hidden*seq*tokens"
                                                    " + 6*N_seq*batch"}}}
    save("device", result["device"])
    for shape in shapes:
        for compile_ in ([False] if a.tiny else [False, True]):
            if compile_ and shape != "bert-base":
                continue  # compile time is paid once; measured where it matters
            case = f"{shape} compiled" if compile_ else shape
            try:
                run = throughput(shape, batch, a.seq, steps, warmup, device, compile_=compile_)
            except Exception as e:  # one failed configuration must not lose the others
                save(case, {"notes": {"error": f"{type(e).__name__}: {e}"[:500]}})
                continue
            if peak:
                run["mfu"] = run["achieved_tflops"] / peak
            run["mfu_vs_measured_matmul"] = (run["achieved_tflops"]
                                             / result["device"]["matmul_tflops"])
            result[case] = run
            save(case, run)
            print(json.dumps(run), flush=True)
    plain = result.get(shapes[-1], {})
    if not a.no_ddp and "step_ms" in plain:
        ddp = ddp_overhead(plain["shape"], batch, a.seq, steps, warmup, a.tiny)
        if "step_ms" in ddp:
            ddp["overhead"] = ddp["step_ms"] / plain["step_ms"] - 1
        else:
            ddp = {"notes": ddp}
        result["ddp_one_process"] = ddp
        save("ddp_one_process", ddp)
        print(json.dumps({"ddp_one_process": ddp}), flush=True)
    if a.corpus and a.tokenizer:
        with tempfile.TemporaryDirectory() as tmp:
            done = pretrain_then_finetune(a.corpus, a.tokenizer, a.pretrain_shape,
                                          a.pretrain_steps, a.finetune_steps, Path(tmp))
        if "error" in done:
            done["notes"] = {"error": done.pop("error")}
        result["pretrain_then_finetune"] = done
        save("pretrain_then_finetune", done)
    return result


if __name__ == "__main__":
    main()
