"""Results tables declared as data: each line picks store rows and formats their figures.

A table is a header and lines; every cell is a template (str.format syntax) over the rows
its line picks, so the words around a figure live here and the figure in the store:

    Table(["what", "result"], [
        line("3-layer distilled student", "{d.test_accuracy!p:.1f} %",
             d=Pick("distill", "distilled_3l", commit="f47d2ee")),
    ])

`{NAME.PATH}` is a figure of the row picked as NAME: PATH goes down its metrics by key (a
key may hold dots: "4.57.6 median_ms") and into a list by index or by an item's value
("rows.student.accuracy": the item of `rows` that has a value "student"). Conversions:
`!p` times 100 (a fraction as percent or points), `!k` over 1000. A line's `derive` gets
the picked rows and returns more figures computed from them (a difference, a ratio).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import store


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime: int) -> tuple[store.Row, ...]:
    return tuple(store.load(path))


def load(path: Path) -> tuple[store.Row, ...]:
    """The store at `path`, read once per version of the file."""
    return _load(path, path.stat().st_mtime_ns)


def newest_run(suite: str, machine: str | None = None, commit: str | None = None,
               path: Path = store.STORE) -> list[store.Row]:
    """The rows of a suite's newest run (on a machine kind, at a commit prefix)."""
    found = store.rows(suite, machine=machine, commit=commit, path=path)
    if not found:
        raise SystemExit(f"the store has no {suite} rows for machine={machine} commit={commit}")
    last = found[-1]
    return [r for r in found if (r.commit, r.date, r.machine) == (last.commit, last.date,
                                                                   last.machine)]


@dataclass(frozen=True)
class Pick:
    """One row of the store: the newest of a suite's case (`nth` counts from the oldest
    otherwise), at a commit (a prefix), on a machine kind, under a transformers version."""
    suite: str
    case: str
    commit: str | None = None
    machine: str | None = None
    transformers: str | None = None
    nth: int = -1

    def row(self, path: Path) -> store.Row:
        found = [r for r in load(path) if r.suite == self.suite and r.case == self.case
                 and (self.commit is None or r.commit.startswith(self.commit))
                 and (self.machine is None or store.machine_key(r.machine) == self.machine)
                 and (self.transformers is None
                      or r.libraries.get("transformers") == self.transformers)]
        if not found:
            raise SystemExit(f"the store has no row for {self}")
        return found[self.nth]


def lookup(node, path: str):
    """The value at a dotted `path` under `node` (see the module's docstring)."""
    if not path:
        return node
    for cut in [i for i, c in enumerate(path) if c == "."] + [len(path)]:
        head, rest = path[:cut], path[cut + 1:]
        if isinstance(node, dict) and head in node:
            child = node[head]
        elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
            child = node[int(head)]
        elif isinstance(node, list) and any(isinstance(i, dict) and head in i.values()
                                            for i in node):
            child = next(i for i in node if isinstance(i, dict) and head in i.values())
        else:
            continue
        try:
            return lookup(child, rest)
        except KeyError:
            continue
    raise KeyError(path)


class Figures(string.Formatter):
    """str.format over picked rows' metrics, with the `!p` and `!k` conversions."""

    def get_field(self, field_name, args, kwargs):
        name, _, path = field_name.partition(".")
        try:
            return lookup(kwargs[name], path), field_name
        except KeyError:
            raise KeyError(f"no figure {field_name!r} in the picked rows") from None

    def convert_field(self, value, conversion):
        if value is None:
            raise ValueError("a figure the table shows is null in the store")
        if conversion == "p":
            return 100 * value
        if conversion == "k":
            return value / 1000
        return super().convert_field(value, conversion)


FIGURES = Figures()


@dataclass
class Line:
    cells: tuple[str, ...]
    picks: dict[str, Pick]
    derive: Callable[[dict[str, store.Row]], dict] | None = None

    def render(self, path: Path, shared: dict) -> list[str]:
        rows = {name: pick.row(path) for name, pick in self.picks.items()}
        values = shared | {name: r.metrics for name, r in rows.items()}
        values |= self.derive(rows) if self.derive else {}
        return [FIGURES.format(cell, **values) for cell in self.cells]


def line(*cells: str, derive=None, **picks: Pick) -> Line:
    """A table line: its cells (templates), the rows they read by name, and `derive`."""
    return Line(cells, picks, derive)


@dataclass
class Table:
    header: list[str]
    """Templates too, over `picks`."""
    lines: list[Line]
    picks: dict[str, Pick] = field(default_factory=dict)
    """Rows every line and the header may read."""

    def render(self, path: Path = store.STORE) -> str:
        shared = {name: pick.row(path).metrics for name, pick in self.picks.items()}
        out = [[FIGURES.format(h, **shared) for h in self.header]]
        out += [ln.render(path, shared) for ln in self.lines]
        return markdown(out)


def markdown(rows: list[list[str]]) -> str:
    """A markdown table: the first row is the header."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
