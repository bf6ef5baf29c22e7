"""The stages that write model artifacts, each one object: its name (the CLI command,
the `stage` its stage.json records, what `compress` plans), its config class (the CLI's
options and a recipe entry's fields derive from it), and its run function, imported only
when it runs (torch loads then).

    >>> STAGES["quantize"].config.__name__
    'QuantizeConfig'
    >>> # STAGES["quantize"].run(QuantizeConfig(model="runs/rt/student", out="runs/rt/int8"))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from edgebert.config import (DistillConfig, ExportConfig, FinetuneConfig, LearnedPruneConfig,
                             PretrainConfig, PruneConfig, QuantizeConfig, TrimVocabConfig)


@dataclass(frozen=True)
class Stage:
    name: str
    config: type
    function: str
    """`module:function`, called as function(cfg, log=..., **options)."""
    resumes: bool = False
    """Takes `restart=True` to discard an unfinished run instead of resuming it."""

    def run(self, cfg, log=print, **options) -> Path:
        if hasattr(cfg, "train"):  # a training stage: its device and torchrun world first
            from edgebert.train import preflight

            preflight(cfg)
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)(cfg, log=log, **options)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("pretrain", PretrainConfig, "edgebert.pretrain.stage:pretrain", resumes=True),
    Stage("finetune", FinetuneConfig, "edgebert.teacher.finetune:finetune", resumes=True),
    Stage("distill", DistillConfig, "edgebert.distill.distill:distill", resumes=True),
    Stage("distill-general", DistillConfig, "edgebert.distill.general:distill_general",
          resumes=True),
    Stage("prune", PruneConfig, "edgebert.prune.stage:prune", resumes=True),
    Stage("prune-learned", LearnedPruneConfig, "edgebert.prune.learned:prune_learned",
          resumes=True),
    Stage("trim-vocab", TrimVocabConfig, "edgebert.trim.stage:trim_vocab"),
    Stage("quantize", QuantizeConfig, "edgebert.quantize.stage:quantize"),
    Stage("export", ExportConfig, "edgebert.export.stage:export"),
)}
