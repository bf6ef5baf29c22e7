"""How long the rest of a compress run will take: the plan's steps, priced at the speed this
run's finished steps measured.

- A training step (fine-tuning, distillation, pruning with recovery) takes the optimizer
  steps its config asks for on the task's training set (`train.epochs_for`, the loop's own
  rule; early stopping can only end it sooner), at the seconds per optimizer step of the
  latest finished stage of the same kind (metrics.json `train.seconds / train.steps`,
  evaluations included); a pruning recovery before any has finished at the student's
  rate, an upper bound (a pruned model is smaller). The teacher's rate prices no student:
  it ran 3.7x slower per step than the default student.
- Any other step (INT8, exports, trimming, the bench) takes what the latest finished step of
  the same stage for the same target or format took in this run (timings.json): an arm64
  step that takes x86-vnni's graph is seconds, an OpenVINO INT8 step minutes.

A step nothing has priced yet (the first INT8 step, the bench) is counted, not guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgebert import artifact
from edgebert.compress.plan import Step

TRAINING = ("finetune", "distill", "prune")
STAND_IN = {"prune": "distill"}
"""Whose rate prices a training stage none of its own kind has priced yet."""


@dataclass
class Estimate:
    seconds: float
    """The priced steps' time left."""
    unpriced: list[str]
    """The stages of the steps left that nothing in this run has priced yet."""

    def line(self) -> str:
        """What is left, in words.

        >>> Estimate(840.0, ["quantize", "quantize", "bench"]).line()
        'about 14 min, plus 3 steps not timed yet (quantize, bench)'
        >>> Estimate(0.0, ["distill"]).line(), Estimate(150.0, []).line()
        ('1 step not timed yet (distill)', 'about 2 min')
        >>> Estimate(42.0, []).line()
        'about 42 s'
        """
        n = len(self.unpriced)
        unpriced = (f"{n} step{'s' if n > 1 else ''} not timed yet "
                    f"({', '.join(dict.fromkeys(self.unpriced))})")
        priced = (f"about {self.seconds:.0f} s" if self.seconds < 90
                  else f"about {self.seconds / 60:.0f} min")
        if not n:
            return priced
        return f"{priced}, plus {unpriced}" if self.seconds else unpriced


def optimizer_steps(step: Step, examples: int, kind: str | None) -> int | None:
    """The optimizer steps a training step's config asks for on `examples` training examples
    of a task of `kind`; None for other steps."""
    from edgebert.kinds import KINDS
    from edgebert.train import epochs_for

    cfg = step.config
    if step.stage not in TRAINING or getattr(cfg, "recover", "distill") == "none":
        return None
    train = cfg.train
    if train.max_steps:
        return train.max_steps
    cap = KINDS[kind].max_auto_epochs if kind in KINDS else \
        max(k.max_auto_epochs for k in KINDS.values())  # unknown: an upper bound
    per_epoch = math.ceil(math.ceil(examples / train.batch_size) / train.grad_accum)
    return max(1, math.ceil(epochs_for(train, examples, cap) * per_epoch))


def what_of(step: Step) -> tuple:
    """What prices a step that does not train: its stage, and the target or format it makes."""
    return (step.stage, getattr(step.config, "target", None),
            getattr(step.config, "format", None))


def estimate(steps: list[Step], left: list[Step], run: Path, timings: dict) -> Estimate | None:
    """The time `left` (steps of `steps` not finished) will take; None before the teacher has
    finished (nothing has been measured yet)."""
    teacher = run / "teacher"
    if not artifact.is_complete(teacher):
        return None
    examples = (artifact.read_json(teacher / "metrics.json").get("train") or {}).get("examples")
    kind = (artifact.read_json(teacher / "stage.json").get("task") or {}).get("kind")
    rates: dict[str, float] = {}  # seconds per optimizer step, by stage
    took: dict[tuple, float] = {}  # seconds, by what_of
    for step in steps:
        if step in left:
            continue
        key = str(step.out.relative_to(run))
        if key in timings:
            took[what_of(step)] = timings[key]
        metrics = step.out / "metrics.json"
        train = artifact.read_json(metrics).get("train") if metrics.exists() else None
        if step.stage in TRAINING and train and train.get("steps"):
            rates[step.stage] = train["seconds"] / train["steps"]
    seconds, unpriced = 0.0, []
    for step in left:
        n = optimizer_steps(step, examples, kind) if examples else None
        rate = rates.get(step.stage, rates.get(STAND_IN.get(step.stage)))
        if n is not None and rate is not None:
            seconds += n * rate
        elif n is None and what_of(step) in took:
            seconds += took[what_of(step)]
        else:
            unpriced.append(step.stage)
    return Estimate(seconds, unpriced)
