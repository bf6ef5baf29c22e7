"""EdgeBERT: compress BERT for edge and mobile, and measure what each step keeps.

The package imports no stage, so `import edgebert` stays fast and any module may read
`__version__` without pulling stages in: each stage's function lives in its own package
(`edgebert.stages.STAGES` names them all), `edgebert.evaluate` scores an artifact, and
`edgebert.runtime` serves a bundle.
"""

import logging

# torchao (pulled in by neural-compressor-pt, imported by transformers' quantizer
# checks) logs warnings about CUDA kernels a CPU build cannot load, and torch
# warns about its enums; neither concerns us.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


class _KnownHarmless(logging.Filter):
    """Two ONNX Runtime warnings that every run printed and that change nothing. Attention
    fusion warns "Input hidden size (192) is not same as weight matrix dimension of q,k,v
    (384)" for every head-pruned layer: after pruning, 6 heads of 32 read a 384-wide input,
    which its Attention op supports (the fused graph is checked against the export, max
    |delta logits| 1e-3). The quantizer asks for its shape pre-processing, which dynamic
    quantization of our already-fused graph does not need. Other warnings still print."""

    PREFIXES = ("Input hidden size (", "Please consider to run pre-processing before quantization")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.PREFIXES)


# ONNX Runtime's transformer tools log as "fusion_attention" (they put their folder on
# sys.path), the quantizer through the root logger
for _name in ("", "fusion_attention", "onnxruntime.transformers.fusion_attention"):
    logging.getLogger(_name).addFilter(_KnownHarmless())

from edgebert.config import TaskConfig, TrainConfig  # noqa: E402
from edgebert.errors import UserError  # noqa: E402

__version__ = "0.2.0"
__all__ = ["FinetuneConfig", "TaskConfig", "TrainConfig", "UserError"]


def __getattr__(name: str):
    """`edgebert.FinetuneConfig`, from its stage's package when first asked for: importing
    it loads the stage registry, which `import edgebert` (the runtime's too) need not."""
    if name == "FinetuneConfig":
        from edgebert.stages.teacher.config import FinetuneConfig

        return FinetuneConfig
    raise AttributeError(f"module 'edgebert' has no attribute {name!r}")
