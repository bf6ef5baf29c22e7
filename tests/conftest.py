"""Shared fixtures: a 2-layer BERT with a 120-token WordPiece vocabulary, and tiny tasks.

Nothing here touches the network: the model is built from a `BertConfig` and
the data is written into the test's temporary directory. The builders and the
in-process CLI runner the tests share live in helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import build_tiny_bert, sentiment_rows, write_csv


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A 4-layer tiny BERT fine-tuned on the sentiment toy task (a real finetune artifact)."""
    from edgebert.config import TaskConfig, TrainConfig
    from edgebert.stages.teacher.config import FinetuneConfig
    from edgebert.stages.teacher.stage import run as finetune

    root = tmp_path_factory.mktemp("teacher")
    base = build_tiny_bert(root / "base", layers=4)
    data = write_csv(root / "sent.csv", sentiment_rows(200))
    out = root / "teacher"
    finetune(FinetuneConfig(model=str(base), out=str(out),
                            task=TaskConfig(str(data), "classification"),
                            train=TrainConfig(epochs=4, batch_size=16, lr=3e-3, threads=1)),
             log=lambda *_: None)
    return out


@pytest.fixture
def sentiment_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "sentiment.csv", sentiment_rows(80))
