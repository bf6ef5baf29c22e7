"""Score a model directory on a task split, with the metrics of its head."""

from __future__ import annotations

from pathlib import Path

from edgebert.artifact import max_tokens, read_json
from edgebert.config import TaskConfig
from edgebert.data.encode import encode
from edgebert.data.tasks import load_task
from edgebert.errors import UserError
from edgebert.modeling import check_vocab, from_pretrained, head_class, load_tokenizer
from edgebert.predict import logits, score, torch_forward
from edgebert.sources import resolve_model


def evaluate(model: str, task: TaskConfig | None = None, split: str = "test",
             max_length: int | None = None) -> dict:
    """Metrics of `model` on `split`; the task defaults to the one it was trained on.

    >>> # evaluate("runs/rt/teacher", split="test")["accuracy"]
    """
    source = resolve_model(model)
    stage_file = Path(source) / "stage.json"
    if task is None and stage_file.exists():  # any artifact a stage wrote, any format
        from edgebert.artifacts_io import artifact_forward, open_artifact

        opened = open_artifact(source, max_length)
        most = max_tokens(source)
        if most is not None and opened.max_length > most:
            raise UserError(f"--max-length {opened.max_length}: {model} takes at most {most} "
                            f"tokens (its position table was cut to its max_length when it "
                            f"was quantized)")
        if split not in opened.task.splits:
            raise UserError(f"--split: must be one of {', '.join(opened.task.splits)}")
        return opened.score(artifact_forward(opened), split) | {"split": split}
    trained = read_json(stage_file)["task"] if stage_file.exists() else None
    if task is None:
        if trained is None:
            raise UserError(f"{model}: no stage.json says which task it was trained on; "
                            f"pass --task")
        task = TaskConfig.from_record(trained)
    data = load_task(task)
    if split not in data.splits:
        raise UserError(f"--split: must be one of {', '.join(data.splits)}, got '{split}'")
    max_length = max_length or (trained or {}).get("max_length", 128)


    net = from_pretrained(head_class(data.kind), source)
    known = [net.config.id2label[i] for i in range(net.config.num_labels)]
    if data.labels and known != data.labels:
        raise UserError(f"{model}: the model's labels ({', '.join(known)}) are not the task's "
                        f"({', '.join(data.labels)}); evaluate it on the task it was trained for")
    tokenizer = load_tokenizer(source)
    check_vocab(net, tokenizer, source)
    enc = encode(data, split, tokenizer, max_length)
    outputs = logits(torch_forward(net), enc, tokenizer.pad_token_id, data.kind)
    return score(data, split, enc, outputs) | {"split": split}
