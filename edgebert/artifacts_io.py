"""Open any artifact a stage wrote: its task, its tokenizer, and a forward to run it.

Stages after fine-tuning read artifacts of several formats (transformers
directories, ONNX, TorchScript); this is the one place that knows how.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from edgebert.artifact import read_json
from edgebert.config import TaskConfig
from edgebert.data.encode import Encoded, encode
from edgebert.data.tasks import Task, load_task
from edgebert.errors import UserError
from edgebert.modeling import load_tokenizer
from edgebert.predict import Forward, logits, score

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "config.json")


@dataclass
class Opened:
    path: Path
    record: dict
    """stage.json"""
    task: Task
    tokenizer: object
    length: int | None = None
    """Tokens per input for this use (`evaluate --max-length`); None: the artifact's own."""

    @property
    def kind(self) -> str:
        return self.task.kind

    @property
    def max_length(self) -> int:
        return self.length or self.record["task"]["max_length"]

    def encode(self, split: str) -> Encoded:
        return encode(self.task, split, self.tokenizer, self.max_length)

    def outputs(self, forward: Forward, enc: Encoded):
        return logits(forward, enc, self.tokenizer.pad_token_id, self.kind)

    def score(self, forward: Forward, split: str, enc: Encoded | None = None,
              outputs: list | None = None) -> dict:
        """Task metrics of `forward` on `split`; pass `outputs` (of `self.outputs` on the
        same `enc`) when they were computed already, to run the model once."""
        enc = enc or self.encode(split)
        return score(self.task, split, enc, outputs if outputs is not None
                     else self.outputs(forward, enc))


def open_artifact(path: str | Path, max_length: int | None = None) -> Opened:
    path = Path(path)
    if not (path / "stage.json").exists():
        raise UserError(f"{path}: no stage.json; pass an artifact directory written by an "
                        f"edgebert stage")
    record = read_json(path / "stage.json")
    t = record.get("task")
    if not t:
        raise UserError(f"{path}/stage.json: no task record")
    task = load_task(TaskConfig.from_record(t))
    return Opened(path, record, task, load_tokenizer(str(path)), max_length)


def load_torch(opened: Opened):

    from edgebert.modeling import from_pretrained, head_class

    return from_pretrained(head_class(opened.kind), opened.path).eval()


def calibration_items(opened: Opened, n: int) -> list[dict]:
    """Up to `n` training examples, one per item at its own length (seeded; never dev or
    test): the shapes an app sends, so the activation ranges a static INT8 step collects
    are those of real inputs."""
    return calibration_batches(opened, n, 1)


def calibration_batches(opened: Opened, n: int, size: int = 16) -> list[dict]:
    """Up to `n` training examples (seeded; never dev or test) in padded batches of `size`."""
    import random

    from edgebert.data.features import INPUTS, pad_batch

    train = opened.encode("train").features
    picked = random.Random(0).sample(train, min(n, len(train)))
    return [pad_batch(picked[i:i + size], opened.tokenizer.pad_token_id, INPUTS)
            for i in range(0, len(picked), size)]


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)


def artifact_forward(opened: Opened) -> Forward:
    """Run whichever model file the artifact holds (formats.MODEL_FILES order: PyTorch
    weights first), in the precision its stage.json records; an ONNX Runtime INT8 graph as
    its stage scored it (predict.scored_as_run)."""
    from edgebert.formats import open_model, require_model_file
    from edgebert.predict import runner_forward, scored_as_run, torch_forward

    path, name = require_model_file(opened.path)
    if name == "pytorch":
        return torch_forward(load_torch(opened), autocast=opened.record.get("precision") == "bf16")
    runner, fmt = open_model(path, record=opened.record, scoring=True)
    if fmt.runtime == "torch":  # TorchScript, INC's program: one tensor, shaped as a forward
        return lambda batch: runner(batch)[0]
    # one text at a time where that is what an app gets: ONNX Runtime's dynamic INT8 picks
    # its scales per batch; OpenVINO runs one text on a static length bucket
    return scored_as_run(runner_forward(runner, opened.kind), fmt.runtime == "openvino" or (
        fmt.runtime == "onnxruntime" and opened.record.get("precision") == "int8"))
