"""What the stages that train on a labelled task share: encode the task (`prepare`),
train through the one loop while scoring the dev split and score dev and test (`fit`),
save the model artifact (`save`).

Fine-tuning, distillation and pruning recovery are each a few lines on top; pretraining
and general distillation train on a corpus, through `edgebert.train` directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgebert import artifact
from edgebert.config import TrainConfig
from edgebert.data.encode import Encoded, collate, encode
from edgebert.data.features import sequences
from edgebert.data.tasks import Task
from edgebert.errors import UserError
from edgebert.kinds import kind
from edgebert.modeling import count_params, save_pretrained
from edgebert.predict import logits, score, torch_forward


@dataclass
class Prepared:
    task: Task
    encoded: dict[str, Encoded]
    pad_id: int

    def collate(self, features: list[dict]):
        return collate(features, self.pad_id)

    def score(self, model, split: str) -> dict:
        return score(self.task, split, self.encoded[split],
                     logits(torch_forward(model), self.encoded[split], self.pad_id,
                            self.task.kind))


def prepare(task: Task, tokenizer, max_length: int, log=print) -> Prepared:
    encoded = {s: encode(task, s, tokenizer, max_length) for s in task.splits}
    for split, enc in encoded.items():
        if enc.truncated and not kind(task.kind).windows:
            log(f"{split}: {enc.truncated} of {len(task.splits[split])} examples truncated "
                f"to {max_length} tokens")
    _check_unknown(encoded["train"], tokenizer)
    return Prepared(task, encoded, tokenizer.pad_token_id)


MOSTLY_UNKNOWN = 0.5
"""Above this fraction of [UNK] among the training tokens, the tokenizer does not fit the
data (a wrong or empty vocabulary): a model trained on it learns nothing, silently."""


def _check_unknown(train: Encoded, tokenizer) -> None:
    unk, special = tokenizer.unk_token_id, set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    if unk is None:
        return  # byte-level tokenizers have no unknown token
    tokens = [t for f in train.features for seq in sequences(f) for t in seq
              if t not in special]
    share = sum(t == unk for t in tokens) / max(len(tokens), 1)
    if share > MOSTLY_UNKNOWN:
        raise UserError(f"the tokenizer ({tokenizer.name_or_path}) maps {share:.0%} of the "
                        f"training text to {tokenizer.unk_token}: its vocabulary does not fit "
                        f"this data; check its vocab.txt / tokenizer.json")


def fit(model, data: Prepared, loss_fn, cfg: TrainConfig, work: Path, desc: str,
        scored=None, after_step=None, select_after: float = 0.0,
        checkpoint: Path | None = None) -> dict:
    """Train `model` and return dev/test metrics and the run record.

    `scored` is the model evaluated on dev when the trainable module wraps it
    (distillation trains the student together with its projections). `checkpoint`: where
    its resumable state goes (default `work/checkpoint`; a stage that trains twice gives
    each its own folder inside that one, which finishing the artifact removes).
    """
    from edgebert.train import train  # torch-heavy: only once the inputs are good

    scored = scored or model
    task_kind = kind(data.task.kind)
    started = time.perf_counter()
    result = train(model, data.encoded["train"].features, loss_fn, cfg, collate=data.collate,
                   evaluate=lambda: data.score(scored, "dev"), metric=data.task.metric,
                   tiebreak=task_kind.tiebreak,
                   checkpoint_dir=checkpoint or work / "checkpoint",
                   desc=desc, after_step=after_step, select_after=select_after,
                   max_auto_epochs=task_kind.max_auto_epochs)
    seconds = time.perf_counter() - started
    metrics = {split: data.score(scored, split) for split in ("dev", "test")}
    return metrics | {"metric": data.task.metric, "params": count_params(scored),
                      "train": {"seconds": seconds, "steps": result.steps,
                                "examples": len(data.task.splits["train"]),
                                "truncated": data.encoded["train"].truncated,
                                "best_step": result.best_step,
                                "stopped_early": result.stopped_early,
                                "precision": result.precision,
                                "history": result.history}}


def save(work: Path, out: Path, model, tokenizer, stage: dict, metrics: dict) -> Path:
    """Save a transformers model directory and finish the artifact (metrics.json last)."""
    import gzip

    save_pretrained(work, model, tokenizer)
    metrics["size_mb"] = artifact.dir_size_mb(work)
    # zeros (unstructured pruning) compress on disk even where they buy no speed
    metrics["compressed_mb"] = len(gzip.compress((work / "model.safetensors").read_bytes(),
                                                 compresslevel=6)) / 1e6
    return artifact.finish(work, out, stage, metrics)


def task_record(task: Task, task_cfg, max_length: int) -> dict:
    """What a later stage needs to rebuild the same task and splits."""
    return {"name": task_cfg.name, "kind": task.kind, "labels": task.labels,
            "columns": task_cfg.columns, "seed": task_cfg.seed, "limit": task_cfg.limit,
            "max_length": max_length,
            "sizes": {s: len(v) for s, v in task.splits.items()}}
