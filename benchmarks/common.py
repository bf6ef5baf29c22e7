"""What the benchmark scripts share: running a command, and adding their figures to the
store as rows.

    from common import RUNS, record, run, script_command

A script imports this module as a sibling (`python benchmarks/x.py` puts benchmarks/ first
on sys.path); edgebert itself comes from the install (`pip install -e .`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import store

RUNS = Path(os.environ.get("EDGEBERT_BENCH_RUNS", "runs/bench"))
"""Where the scripts keep the run directories they make (a finished stage is reused)."""
PROSE = ("what", "note", "finding")
"""Keys of a case that are words, not figures: they go to the row's notes."""


def usage(doc: str | None) -> None:
    """`-h` / `--help` on a script without argparse: print what it measures (its docstring,
    which names its arguments) and exit, instead of starting a run that takes minutes."""
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print((doc or "").strip())
        sys.exit(0)


def run(cmd: list, env: dict | None = None, capture: bool = False) -> float:
    """Run a command (echoed first, `+ ...`); its wall time in seconds. A failure stops
    the script, or with `capture` (the command's output kept out of the log) raises
    RuntimeError with the output's last line, for a caller that goes on without it."""
    cmd = [str(c) for c in cmd]
    print("+", shlex.join(cmd), flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, check=not capture, env=env, capture_output=capture, text=True)
    if done.returncode:
        raise RuntimeError(((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1])
    return time.perf_counter() - started


def script_command(script: str, args: list | None = None) -> str:
    """The command that reproduces a script's run: `python benchmarks/NAME ARGS`, with this
    invocation's arguments unless given."""
    args = sys.argv[1:] if args is None else args
    return shlex.join(["python", f"benchmarks/{Path(script).name}", *map(str, args)])


def record(suite: str, cases: dict[str, dict], *, command: str | dict, notes: dict | None = None,
           threads: int | None = None, machine: dict | None = None,
           libraries: dict | None = None, date: str | None = None) -> list[store.Row]:
    """Append one row per case to the store and say so.

    A case's `command` (the command that made that case alone) replaces the run's, and its
    PROSE keys and its `notes` join the run's notes; what is left are its metrics.
    `machine`: more about the machine than its CPU (a GPU's name); `libraries`: versions
    other than this interpreter's (a run that compares two stacks); `date`: one date for
    rows appended section by section, so they read as one run (store.latest)."""
    metrics = {case: {k: v for k, v in m.items() if k not in ("command", "notes", *PROSE)}
               for case, m in cases.items()}
    rows = store.measured(suite, metrics, threads=threads, command=command, notes=notes,
                          date=date)
    for row, m in zip(rows, cases.values()):
        row.command = m.get("command", row.command)
        said = {k: m[k] for k in PROSE if k in m} | m.get("notes", {})
        row.notes = (row.notes or {}) | said or None
        row.machine |= machine or {}
        row.libraries |= libraries or {}
    store.append(rows, store.STORE)
    print(f"{suite}: {len(rows)} row(s) appended to {store.STORE}: {', '.join(cases)}",
          flush=True)
    return rows
