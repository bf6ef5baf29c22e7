"""The results tables of the README and the docs, generated from the store, in place.

    python benchmarks/tables.py            # rewrite every table between its markers
    python benchmarks/tables.py --check    # exit 1 where a committed table differs

A generated table sits between two markers that name its generator and which rows it
shows, and nothing else in the page is touched:

    <!-- table:peers machine=epyc-vnni -->
    | what a user runs | ...
    <!-- /table -->

`machine=` picks a machine kind (store.machine_key), `commit=` a commit (a prefix); of
the rows left, the suite's newest run is shown. The peers-derived tables are functions
here and in benchmarks/goals.py; the lists of measurements (what, result, command) are
declared as data in benchmarks/tablespecs.py, the tables of one suite's cases in
benchmarks/tablecases.py. Every results table of the README and docs/ is one of these.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import goals
import store
import tablecases
import tablespecs
from tablefmt import newest_run

ROOT = store.HERE.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
"""Every page a generated table may sit in."""
MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+)(?P<args>(?: [\w-]+=\S+)*) -->\n)"
                    r"(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
HEADLINE = ("teacher-pytorch", "optimum-fp32", "optimum-int8", "ort-quantize-dynamic",
            "edgebert-recommended", "edgebert-one-file")
"""The README's rows of the peers comparison."""


def peers_result(rows: list[store.Row]) -> dict:
    """One peers run as benchmarks/peers.py's table reads it."""
    by_case = {r.case: r.metrics for r in rows}
    summary = by_case.pop("summary", {})
    return {"rows": by_case, "fastest_peer": summary.get("fastest_peer")}


def peers(path: Path = store.STORE, **where) -> str:
    from peers import table

    return table(peers_result(newest_run("peers", path=path, **where)))


def peers_headline(path: Path = store.STORE, **where) -> str:
    from peers import ROWS

    rows = peers_result(newest_run("peers", path=path, **where))["rows"]
    lines = ["| what a user runs | test accuracy | size | p50, 128 tokens | p50, real texts |",
             "|---|---|---|---|---|"]
    for name in HEADLINE:
        r = rows[name]
        cells = [ROWS[name].label, f"{100 * r['test_accuracy']:.2f} %", f"{r['size_mb']:.1f} MB",
                 f"{r['p50_ms']:.2f} ms", f"{r['texts_p50_ms']:.2f} ms"]
        if name == "edgebert-recommended":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tasks(path: Path = store.STORE, **where) -> str:
    """Every task's newest row per machine kind, in the order the store holds them; each
    labelled with its machine kind."""
    from tasks import table

    latest: dict[tuple[str, str], store.Row] = {}
    for r in store.rows("tasks", path=path, **where):
        latest.pop((r.case, store.machine_key(r.machine)), None)
        latest[(r.case, store.machine_key(r.machine))] = r
    def label(case: str, machine: str) -> str:  # "vader-amazon (1-bit table; epyc-vnni)"
        return f"{case[:-1]}; {machine})" if case.endswith(")") else f"{case} ({machine})"
    return table({"tasks": {label(case, machine): r.metrics
                            for (case, machine), r in latest.items()}})


GENERATORS = {"peers": peers, "peers-headline": peers_headline, "tasks": tasks,
              "goals": goals.goals, "runtimes": tablecases.runtimes,
              "learned-prune": tablecases.learned_prune,
              **{name: table.render for name, table in
                 (tablespecs.SPECS | tablecases.SPECS).items()}}
"""Each generator by its marker name: keyword arguments from the marker, a table out."""


def render(text: str, path: Path = store.STORE) -> str:
    """A page with every marked table generated afresh from the store at `path`."""
    def one(m: re.Match) -> str:
        where = dict(a.split("=", 1) for a in m.group("args").split())
        if m.group("name") not in GENERATORS:
            raise SystemExit(f"no table generator named {m.group('name')!r}")
        return m.group(1) + GENERATORS[m.group("name")](path=path, **where) + "\n" + m.group(5)
    return MARKER.sub(one, text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(str(page.relative_to(ROOT)))
            if not check:
                page.write_text(new)
    if check and stale:
        print("tables differ from the store (python benchmarks/tables.py rewrites them): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    print(("rewritten: " + ", ".join(stale)) if stale and not check else "tables match the store")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
