"""The registry of stages, each one object: its name (the CLI command, the `stage` its
stage.json records (a bundle has a manifest instead), what `compress` plans), its config class (the CLI's options and a
recipe entry's fields derive from it), and its run function, imported only when it runs
(torch loads then). A stage package's `stage.py` holds its `run(cfg, log)`; distillation's
second stage, on a corpus, is `edgebert.stages.distill.general`.

    >>> STAGES["quantize"].config.__name__
    'QuantizeConfig'
    >>> # STAGES["quantize"].run(QuantizeConfig(model="runs/rt/student", out="runs/rt/int8"))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from edgebert.config import (
    BundleConfig,
    DistillConfig,
    ExportConfig,
    FinetuneConfig,
    LearnedPruneConfig,
    PretrainConfig,
    PruneConfig,
    QuantizeConfig,
    TrimVocabConfig,
)


@dataclass(frozen=True)
class Stage:
    name: str
    config: type
    function: str
    """`module:function`, called as function(cfg, log=..., **options)."""
    resumes: bool = False
    """A training stage: a failed run keeps its checkpoint and the same command resumes it;
    `restart=True` discards it instead."""

    def run(self, cfg, log=print, **options) -> Path:
        if hasattr(cfg, "train"):  # a training stage: its device and torchrun world first
            from edgebert.train import preflight

            preflight(cfg)
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)(cfg, log=log, **options)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("pretrain", PretrainConfig, "edgebert.stages.pretrain.stage:run", resumes=True),
    Stage("finetune", FinetuneConfig, "edgebert.stages.teacher.stage:run", resumes=True),
    Stage("distill", DistillConfig, "edgebert.stages.distill.stage:run", resumes=True),
    Stage("distill-general", DistillConfig, "edgebert.stages.distill.general:run", resumes=True),
    Stage("prune", PruneConfig, "edgebert.stages.prune.stage:run", resumes=True),
    Stage("prune-learned", LearnedPruneConfig, "edgebert.stages.prune.learned:run", resumes=True),
    Stage("trim-vocab", TrimVocabConfig, "edgebert.stages.trim.stage:run"),
    Stage("quantize", QuantizeConfig, "edgebert.stages.quantize.stage:run"),
    Stage("export", ExportConfig, "edgebert.stages.export.stage:run"),
    Stage("bundle", BundleConfig, "edgebert.stages.bundle.stage:run"),
)}
