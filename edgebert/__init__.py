"""EdgeBERT: compress BERT for edge and mobile, and measure what each step keeps.

The public API: stage functions and their config classes. Heavy modules load
on first use, so `import edgebert` stays fast.
"""

import logging

# torchao (pulled in by neural-compressor-pt, imported by transformers' quantizer
# checks) logs warnings about CUDA kernels a CPU build cannot load, and torch
# warns about its enums; neither concerns us.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

from edgebert.config import FinetuneConfig, TaskConfig, TrainConfig  # noqa: E402
from edgebert.errors import UserError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["FinetuneConfig", "TaskConfig", "TrainConfig", "UserError", "evaluate", "finetune"]


def finetune(cfg: FinetuneConfig, **kwargs):
    from edgebert.teacher.finetune import finetune as run

    return run(cfg, **kwargs)


def evaluate(model: str, task: TaskConfig | None = None, split: str = "test", **kwargs):
    from edgebert.evaluate import evaluate as run

    return run(model, task, split, **kwargs)
