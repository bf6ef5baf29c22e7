"""The stages, one package each under `edgebert/stages/`, and their registry: one `Stage`
line per stage names it (the CLI command, the `stage` its stage.json records (a bundle has
a manifest instead), what `compress` plans), its config class (its package's `config.py`:
the command's options and a recipe entry's fields derive from it) and its run function,
imported only when it runs (torch loads then).

A stage package's `stage.py` holds its `run(cfg, log)`; its config class's `HELP` (a
`ClassVar`) is its command's `--help` text (`edgebert.cli` makes the command from the
`Stage` line).
Distillation's second stage, on a corpus, is `edgebert.stages.distill.general`, run by
`edgebert distill --corpus`.

    >>> STAGES["quantize"].config.__name__
    'QuantizeConfig'
    >>> # STAGES["quantize"].run(QuantizeConfig(model="runs/rt/student", out="runs/rt/int8"))
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path

from edgebert.stages.bundle.config import BundleConfig
from edgebert.stages.distill.config import DistillConfig
from edgebert.stages.export.config import ExportConfig
from edgebert.stages.pretrain.config import PretrainConfig
from edgebert.stages.prune.config import LearnedPruneConfig, PruneConfig
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.teacher.config import FinetuneConfig
from edgebert.stages.trim.config import TrimVocabConfig


@dataclass(frozen=True)
class Stage:
    name: str
    config: type
    function: str
    """`module:function`, called as function(cfg, log=..., **options)."""
    resumes: bool = False
    """A training stage: a failed run keeps its checkpoint and the same command resumes it;
    `restart=True` (`--restart`) discards it instead."""
    required: tuple[str, ...] = ()
    """Options its command takes without a default (`--model`, `--out`): the config's
    defaults serve the Python API and recipes, where the run names them."""

    def run(self, cfg, log=print, **options) -> Path:
        if hasattr(cfg, "train"):  # a training stage: its device and torchrun world first
            from edgebert.train import preflight

            preflight(cfg)
        return pkgutil.resolve_name(self.function)(cfg, log=log, **options)

    @property
    def help(self) -> str:
        """Its command's `--help`: the `HELP` of its config class, which the command line
        imports anyway (the stage's own module loads torch)."""
        return self.config.HELP


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("pretrain", PretrainConfig, "edgebert.stages.pretrain.stage:run", resumes=True),
    Stage("finetune", FinetuneConfig, "edgebert.stages.teacher.stage:run", resumes=True,
          required=("out",)),
    Stage("distill", DistillConfig, "edgebert.stages.distill.stage:run", resumes=True,
          required=("teacher", "out")),
    Stage("distill-general", DistillConfig, "edgebert.stages.distill.general:run", resumes=True),
    Stage("prune", PruneConfig, "edgebert.stages.prune.stage:run", resumes=True,
          required=("model", "out")),
    Stage("prune-learned", LearnedPruneConfig, "edgebert.stages.prune.learned:run",
          resumes=True, required=("model", "teacher", "out")),
    Stage("trim-vocab", TrimVocabConfig, "edgebert.stages.trim.stage:run",
          required=("model", "out")),
    Stage("quantize", QuantizeConfig, "edgebert.stages.quantize.stage:run",
          required=("model", "out")),
    Stage("export", ExportConfig, "edgebert.stages.export.stage:run", required=("model", "out")),
    Stage("bundle", BundleConfig, "edgebert.stages.bundle.stage:run", required=("model", "out")),
)}
