"""Tasks: the examples of each split, the label names, and the kind of head.

Packaged tasks:
- `rotten-tomatoes`: review snippets, `fresh` = positive, `rotten` = negative;
  plot summaries and duplicate texts dropped; split grouped by movie.
- `wnut-ner`: tweets with BIO tags over 10 entity types; split by tweet.

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
from edgebert.data.split import split_grouped
from edgebert.errors import UserError
from edgebert.kinds import kind
from edgebert.sources import resolve_data


@dataclass
class TextExample:
    """One sentence (or sentence pair) with a class index or a regression target."""

    text: str
    label: int | float
    text_pair: str | None = None
    group: str | None = None
    """What the split keeps together (the movie, for Rotten Tomatoes)."""


@dataclass
class TokenExample:
    """One pre-split sentence with one tag index per token."""

    tokens: list[str]
    tags: list[int]


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[tuple[int, str]]
    """(character start in context, answer text); SQuAD dev sets give several."""


@dataclass
class Task:
    name: str
    kind: str
    labels: list[str]
    """Class names (classification, pair), tag names (ner); empty for regression and qa."""
    splits: dict[str, list]

    @property
    def metric(self) -> str:
        """The dev metric that early stopping and model selection follow."""
        return kind(self.kind).metric


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
    else:
        path = resolve_data(cfg.name)
        if cfg.kind is None:
            raise UserError(f"{path}: a local task needs --kind "
                            f"(classification, pair, regression, ner or qa)")
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
    sentences = _read_conll(resolve_data("wnut-ner"))
    labels = _tag_names(sentences, "wnut-ner")
    examples = [_to_token_example(s, labels, "wnut-ner") for s in sentences]
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


def _build(path: Path, kind: str, raw: dict[str, list], files: dict[str, Path]) -> Task:
    if kind == "qa":
        return Task(path.name, kind, [], raw)
    if kind == "regression":
        splits = {s: [TextExample(r["text"], _float(r, files[s]), r.get("text_pair"))
                      for r in rows] for s, rows in raw.items()}
        return Task(path.name, kind, [], splits)
    if kind == "ner":
        labels = _tag_names(raw["train"], files["train"])
        return Task(path.name, kind, labels,
                    {s: [_to_token_example(r, labels, files[s]) for r in rows]
                     for s, rows in raw.items()})
    labels = sorted({r["label"] for r in raw["train"]})
    if len(labels) < 2:
        raise UserError(f"{files['train']}: the training split has {len(labels)} distinct "
                        f"label(s); classification needs at least 2")
    index = {name: i for i, name in enumerate(labels)}
    splits = {}
    for s, rows in raw.items():
        for r in rows:
            if r["label"] not in index:
                raise UserError(f"{files[s]}: {r['_where']}: label '{r['label']}' does not "
                                f"occur in the training data ({', '.join(labels)})")
        splits[s] = [TextExample(r["text"], index[r["label"]], r.get("text_pair")) for r in rows]
    return Task(path.name, kind, labels, splits)


def _float(row: dict, path: Path) -> float:
    try:
        return float(row["label"])
    except ValueError:
        raise UserError(f"{path}: {row['_where']}: regression target '{row['label']}' "
                        f"is not a number") from None


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
    if cfg.kind == "qa":
        return _read_squad(path, text)
    if cfg.kind == "ner" and path.suffix in (".txt", ".conll"):
        return _read_conll(path, text)
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
    roles = kind(cfg.kind).roles
    mapping = {role: cfg.columns.get(role, role) for role in roles}
    missing = [f"{role} (column '{col}')" for role, col in mapping.items() if col not in columns]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}; columns are "
                        f"{', '.join(map(str, columns))}; map them with --columns ROLE=COLUMN")
    rows = []
    for where, rec in records:
        row = {"_where": where}
        for role, col in mapping.items():
            value = rec.get(col)
            if value is None or (role == "label" and str(value).strip() == ""):
                raise UserError(f"{path}: {where}: empty '{col}'")
            row[role] = value if cfg.kind == "ner" else str(value)
        rows.append(row)
    return rows


def _read_conll(path: Path, text: str | None = None) -> list[dict]:
    """token<TAB>tag lines; a blank (or tab-only) line ends a sentence."""
    text = _read_text(path) if text is None else text
    sentences, tokens, tags = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags, "_where": f"line {n}"})
            tokens, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 2:
            raise UserError(f"{path}: line {n}: expected 'token<TAB>tag', got {line[:40]!r}")
        tokens.append(parts[0])
        tags.append(parts[-1].strip())
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags, "_where": f"line {n}"})
    if not sentences:
        raise UserError(f"{path}: no sentences found")
    return sentences


def _tag_names(sentences: list[dict], where) -> list[str]:
    tags = {t for s in sentences for t in s["tags"]}
    bad = sorted(str(t) for t in tags if t != "O" and not str(t).startswith(("B-", "I-")))
    if bad:
        raise UserError(f"{where}: tags {', '.join(bad[:5])} are not BIO tags "
                        f"(O, B-TYPE, I-TYPE)")
    return ["O"] + sorted(tags - {"O"}, key=lambda t: (t[2:], t[0]))


def _to_token_example(s: dict, labels: list[str], where) -> TokenExample:
    index = {t: i for i, t in enumerate(labels)}
    if len(s["tokens"]) != len(s["tags"]):
        raise UserError(f"{where}: {s['_where']}: {len(s['tokens'])} tokens but "
                        f"{len(s['tags'])} tags")
    for t in s["tags"]:
        if t not in index:
            raise UserError(f"{where}: {s['_where']}: tag '{t}' does not occur in the training "
                            f"data")
    return TokenExample([str(t) for t in s["tokens"]], [index[t] for t in s["tags"]])


def _read_squad(path: Path, text: str) -> list[QAExample]:
    try:
        doc = json.loads(text)
        examples = []
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    answers = [(a["answer_start"], a["text"]) for a in qa["answers"]]
                    if not answers:
                        raise UserError(f"{path}: question {qa['id']} has no answer "
                                        f"(unanswerable questions are not supported)")
                    examples.append(QAExample(str(qa["id"]), qa["question"], para["context"],
                                              answers))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not SQuAD json ({type(err).__name__}: {err}); expected "
                        f"data[].paragraphs[].qas[] with id, question, answers") from None
    if not examples:
        raise UserError(f"{path}: no questions")
    return examples
