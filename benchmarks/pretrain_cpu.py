"""Pretrain a tiny BERT on the Debian corpus on this CPU, then fine-tune it on Rotten
Tomatoes against the same model from random weights.

    python benchmarks/pretrain_cpu.py     # -> benchmarks/results/pretrain_cpu.json

Builds the corpus (`edgebert corpus build`), a WordPiece vocabulary of 8,000
(`edgebert tokenizer train`), pretrains the `tiny` shape (2 layers, 128 wide)
for a fixed number of steps, and fine-tunes both the pretrained and a randomly
initialised copy with the same tokenizer and settings.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RUNS = Path(os.environ.get("EDGEBERT_BENCH_RUNS", "runs/bench")) / "pretrain"
STEPS = int(os.environ.get("EDGEBERT_PRETRAIN_STEPS", "400"))  # about 5 minutes here
FINETUNE = ["--task", "rotten-tomatoes", "--epochs", "2", "--lr", "1e-3", "--batch-size", "32",
            "--eval-every", "100", "--patience", "4", "--max-length", "64"]


def run(cmd: list[str]) -> float:
    print("+", shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def random_init(tok: Path, out: Path, shape: str = "tiny") -> Path:
    """A pretraining shape with random weights, saved like a checkpoint: the baseline a
    pretrained model of that shape must beat."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from edgebert.pretrain.stage import SHAPES

    if (out / "model.safetensors").exists():
        return out
    tokenizer = AutoTokenizer.from_pretrained(str(tok))
    torch.manual_seed(13)
    BertModel(BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         **SHAPES[shape])).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    corpus, tok, pre = RUNS / "corpus", RUNS / "tok", RUNS / "pretrained"
    seconds = {"corpus": run(["edgebert", "corpus", "build", "--out", str(corpus)])}
    if not (tok / "tokenizer.json").exists():
        seconds["tokenizer"] = run(["edgebert", "tokenizer", "train", "--corpus", str(corpus),
                                    "--vocab-size", "8000", "--out", str(tok)])
    pre_cmd = ["edgebert", "pretrain", "--corpus", str(corpus), "--tokenizer", str(tok),
               "--config", "tiny", "--max-length", "128", "--batch-size", "32",
               "--max-steps", str(STEPS), "--lr", "1e-3", "--eval-every", "100",
               "--out", str(pre)]
    seconds["pretrain"] = run(pre_cmd)
    m = json.loads((pre / "metrics.json").read_text())
    rows = {}
    for name, model in (("pretrained", pre), ("random", random_init(tok, RUNS / "random"))):
        out = RUNS / f"rt_{name}"
        seconds[f"finetune_{name}"] = run(["edgebert", "finetune", "--model", str(model),
                                           *FINETUNE, "--out", str(out)])
        rows[name] = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    counts = {p.stem: sum(1 for line in open(p, encoding="utf-8") if line.strip())
              for p in sorted(corpus.glob("*.txt"))}
    result = {"mlm_loss_start": m["before"]["mlm_loss"], "mlm_loss_end": m["heldout"]["mlm_loss"],
              "mlm_accuracy_end": m["heldout"]["mlm_accuracy"],
              "perplexity_end": m["heldout"]["perplexity"],
              "nsp_accuracy": m["heldout"].get("nsp_accuracy"),
              "nsp_accuracy_start": m["before"].get("nsp_accuracy"),
              "rt_accuracy_pretrained": rows["pretrained"], "rt_accuracy_random": rows["random"],
              "pretrain_steps": m["train"]["steps"],
              "pretrain_tokens": m["train"]["steps"] * m["train"]["tokens_per_step"],
              "corpus_sentences": counts, "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "history": m["train"]["history"],
              "command": "python benchmarks/pretrain_cpu.py",
              "pretrain_command": shlex.join(pre_cmd),
              "finetune_command": shlex.join(["edgebert", "finetune", "--model", "MODEL",
                                              *FINETUNE])}
    (HERE / "results" / "pretrain_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
