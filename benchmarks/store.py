"""The one results store: every benchmark figure is a row of benchmarks/results/results.jsonl.

A row is one case of one suite, measured once: its metrics, the commit and date it was
measured at, the machine (CPU model, flags, cores, threads) and the library versions.
Two rows of the same suite and case differ by commit, machine or libraries; nothing in a
name says who measured it or when.

JSON Lines over SQLite: the store lives in git, and one line per row makes a new run a
few added lines in a diff a reviewer can read (SQLite is one binary blob there); a script
appends a row with `open(..., "a")`, no schema migration; `grep '"suite": "peers"'` and
`jq` read it without Python. The store stays small (a few hundred rows), so reading it
whole each time costs nothing.

    python benchmarks/store.py                 # row count by suite and case
    python benchmarks/store.py peers           # the rows of one suite, one line each

Example:

    >>> import store
    >>> [r.case for r in store.rows(suite="peers", machine="epyc-vnni")][:1]
    ['teacher-pytorch']
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
STORE = Path(os.environ.get("EDGEBERT_BENCH_STORE", HERE / "results" / "results.jsonl"))
"""Where rows are read and appended (EDGEBERT_BENCH_STORE: another file, for tests)."""
MACHINE_KEYS = ("cpu", "machine", "flags", "cores", "threads")


@dataclass
class Row:
    suite: str
    """The suite that measured it (benchmarks/run.py's names: peers, tasks, int8...)."""
    case: str
    """What was measured within the suite: an artifact, a task, a variant."""
    metrics: dict
    """The figures, by name, with their units in the name (p50_ms, size_mb, test_accuracy
    as a fraction); nested where the suite records a structure (per-thread latencies)."""
    commit: str
    """The git commit measured; for a row converted from a legacy results file, the commit
    that last wrote that file (see `source`)."""
    date: str
    """When, ISO 8601 in UTC (converted rows: that commit's date)."""
    machine: dict
    """cpu, machine (architecture), flags, cores, threads; cpu "unknown" where the
    measurement did not record it, and a `note` with what it said instead."""
    libraries: dict = field(default_factory=dict)
    """Library versions (onnxruntime, torch, transformers, python...) where recorded."""
    command: str | dict | None = None
    """The command that reproduces it (a dict where it took several)."""
    notes: dict | None = None
    """What the measurement's author wrote beside it (what, finding, note), by key."""
    source: str | None = None
    """The legacy results file it was converted from, if any (git keeps the file)."""

    def __post_init__(self) -> None:
        if not self.suite or not self.case:
            raise ValueError(f"a row needs a suite and a case, got {self.suite!r}, {self.case!r}")
        if not isinstance(self.metrics, dict):
            raise TypeError(f"{self.suite}/{self.case}: metrics must be a dict")


def machine_key(machine: dict) -> str:
    """A short name for a machine's kind, from its fingerprint: epyc-avx2, epyc-vnni,
    xeon-amx, unknown. What INT8 pays depends on these features, so they name the kind.

    >>> machine_key({"cpu": "AMD EPYC 7B13", "flags": ["avx2", "avx512_vnni"]})
    'epyc-vnni'
    """
    cpu, flags = machine.get("cpu") or "unknown", set(machine.get("flags") or [])
    vendor = ("gpu" if machine.get("machine") == "cuda" else "xeon" if "Xeon" in cpu
              else "epyc" if "EPYC" in cpu else cpu.split()[0].lower())
    if vendor in ("unknown", "gpu"):
        return vendor
    feature = ("amx" if "amx_int8" in flags else "vnni" if "avx512_vnni" in flags
               else "avx2" if "avx2" in flags else "")
    return f"{vendor}-{feature}" if feature else vendor


def machine_label(machine: dict) -> str:
    """How a table names a machine kind: "AMD EPYC, AVX-512 VNNI"."""
    return {"epyc-avx2": "AMD EPYC, AVX2", "epyc-vnni": "AMD EPYC, AVX-512 VNNI",
            "xeon-amx": "Intel Xeon, AVX-512 VNNI + AMX"}.get(machine_key(machine),
                                                            machine.get("cpu") or "unknown")


def load(path: Path = STORE) -> list[Row]:
    """Every row, in the order they were appended."""
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def rows(suite: str | None = None, case: str | None = None, machine: str | None = None,
         commit: str | None = None, path: Path = STORE) -> list[Row]:
    """The rows of a suite (and case), on a machine kind (machine_key) or at a commit
    (a prefix), in the order they were appended."""
    return [r for r in load(path)
            if (suite is None or r.suite == suite) and (case is None or r.case == case)
            and (machine is None or machine_key(r.machine) == machine)
            and (commit is None or r.commit.startswith(commit))]


def latest(suite: str, machine: str | None = None, path: Path = STORE) -> list[Row]:
    """The rows of a suite's newest run (on a machine kind): those sharing the date of the
    last row appended. A run appends its rows together, so they share one date."""
    found = rows(suite, machine=machine, path=path)
    if not found:
        return []
    last = found[-1]
    return [r for r in found if (r.date, r.commit) == (last.date, last.commit)]


def append(new: list[Row], path: Path = STORE) -> None:
    """Add rows at the end of the store (one JSON object a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in new:
            f.write(dumps(r) + "\n")


def dumps(row: Row) -> str:
    return json.dumps(asdict(row), ensure_ascii=False)


def git_commit() -> str:
    """HEAD, with "-dirty" where the working tree differs from it (the figure is then of
    code no commit holds); EDGEBERT_BENCH_COMMIT where the tree is no git checkout (a copy
    run on another machine)."""
    if os.environ.get("EDGEBERT_BENCH_COMMIT"):
        return os.environ["EDGEBERT_BENCH_COMMIT"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                              check=False).stdout.strip()
    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def now() -> str:
    """This moment, ISO 8601 in UTC, to the second: a row's date."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def measured(suite: str, cases: dict[str, dict], *, threads: int | None = None,
             command: str | dict | None = None, notes: dict | None = None,
             date: str | None = None) -> list[Row]:
    """Rows for cases measured now (or at `date`, where a run appends its rows section by
    section), on this machine, at this commit: what a suite appends.

    >>> [r.case for r in measured("demo", {"a": {"p50_ms": 1.0}})]
    ['a']
    """
    from edgebert.bench.machine import fingerprint

    fp = fingerprint(threads)
    machine = {k: fp.get(k) for k in MACHINE_KEYS}
    libraries = fp.get("libraries", {}) | {"python": fp.get("python")}
    date = date or now()
    commit = git_commit()
    return [Row(suite, case, metrics, commit, date, machine, libraries, command, notes)
            for case, metrics in cases.items()]


def main(argv: list[str]) -> None:
    found = rows(argv[0]) if argv else load()
    if argv:
        for r in found:
            print(f"{r.case:<40} {machine_key(r.machine):<10} {r.commit[:10]} {r.date[:10]} "
                  f"{', '.join(list(r.metrics)[:6])}")
        return
    counts: dict[str, int] = {}
    for r in found:
        counts[r.suite] = counts.get(r.suite, 0) + 1
    for suite, n in sorted(counts.items()):
        print(f"{suite:<24} {n:>4}")
    print(f"{'total':<24} {len(found):>4}")


if __name__ == "__main__":
    main(sys.argv[1:])
