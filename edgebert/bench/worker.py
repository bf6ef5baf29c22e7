"""Time one artifact in this process and print the samples as one JSON line.

    python -m edgebert.bench.worker MODEL_DIR --batch 1 --seq 128 --threads 2 --runs 50

Run by `edgebert.bench.latency.interleaved`, never in the same process as
another artifact: PyTorch's and ONNX Runtime's spinning thread pools fight
for the cores and inflate each other's times (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def time_pytorch(path: str, batch: int, seq: int, threads: int, warmup: int, runs: int) -> dict:
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    config = transformers.AutoConfig.from_pretrained(path)
    arch = (config.architectures or ["BertModel"])[0]
    if not arch.startswith("Bert"):  # only select among BERT classes named in a config
        raise SystemExit(f"{path}: architecture {arch} is not a BERT model")
    model = getattr(transformers, arch).from_pretrained(path, use_safetensors=True).eval()
    g = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(1000, config.vocab_size, (batch, seq), generator=g)
              if config.vocab_size > 1000 else torch.randint(5, config.vocab_size, (batch, seq)),
              "attention_mask": torch.ones(batch, seq, dtype=torch.long),
              "token_type_ids": torch.zeros(batch, seq, dtype=torch.long)}
    samples = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(**inputs)
            if i >= warmup:
                samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=30)
    a = p.parse_args()
    print(json.dumps(time_pytorch(a.path, a.batch, a.seq, a.threads, a.warmup, a.runs)))


if __name__ == "__main__":
    main()
