"""Run by tests/test_cross_version.py under two Pythons (two transformers versions):

    python tests/cross_version.py make DIR    # a teacher and a head-pruned student in DIR
    python tests/cross_version.py score DIR   # their logits and dev metrics, as JSON

`make` writes with whatever transformers this interpreter has, `score` reads with its
own: an artifact must score the same whichever version wrote it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import build_tiny_bert, sentiment_rows, write_csv

ARTIFACTS = ("teacher", "pruned")


def make(root: Path) -> None:
    from edgebert.cli import main
    from edgebert.config import TaskConfig, TrainConfig
    from edgebert.stages.teacher.config import FinetuneConfig
    from edgebert.stages.teacher.stage import run as finetune

    base = build_tiny_bert(root / "base", layers=2)
    data = write_csv(root / "sent.csv", sentiment_rows(120))
    finetune(FinetuneConfig(model=str(base), out=str(root / "teacher"),
                            task=TaskConfig(str(data), "classification"),
                            train=TrainConfig(epochs=3, batch_size=16, lr=3e-3, threads=1)),
             log=lambda *_: None)
    # one head of two in layer 0 only: layers with different head counts
    main(["prune", "--model", str(root / "teacher"), "--heads", "1", "--scope", "global",
          "--ffn", "0.5", "--recover", "none", "--out", str(root / "pruned")],
         standalone_mode=False)


def score(root: Path) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    from edgebert.evaluate import evaluate
    from edgebert.modeling import from_pretrained

    ids = torch.arange(5, 29).reshape(2, 12)
    feed = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids)}
    out = {}
    for name in ARTIFACTS:
        model = from_pretrained(AutoModelForSequenceClassification, root / name).eval()
        with torch.no_grad():
            logits = model(**feed).logits
        heads = [layer.attention.self.query.out_features for layer in model.bert.encoder.layer]
        out[name] = {"logits": logits.tolist(), "q_widths": heads,
                     "dev": evaluate(str(root / name), split="dev")}
    return out


if __name__ == "__main__":
    what, where = sys.argv[1], Path(sys.argv[2])
    if what == "make":
        make(where)
    else:
        print(json.dumps(score(where)))
