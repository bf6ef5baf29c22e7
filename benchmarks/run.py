"""Run named benchmark suites, each after what it needs, and add their rows to the store.

    python benchmarks/run.py int8            # teacher, distill, then int8 (each once)
    python benchmarks/run.py peers --force   # measure again though the store has rows
    python benchmarks/run.py --list

A suite whose rows the store already holds for this commit and machine kind is reused,
not run again. A script that still writes a results file (rather than rows) writes it to a
temporary folder (EDGEBERT_BENCH_RESULTS), and benchmarks/legacy.py turns it into rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import legacy
import store


@dataclass(frozen=True)
class Suite:
    script: tuple[str, ...]
    """The script under benchmarks/ and its arguments."""
    needs: tuple[str, ...] = ()
    """Suites whose run directories it reads (under EDGEBERT_BENCH_RUNS)."""


SUITES = {
    "teacher": Suite(("teacher.py", "rt")),
    "distill": Suite(("distill.py",), needs=("teacher",)),
    "prune": Suite(("prune.py",), needs=("distill",)),
    "int8": Suite(("int8.py",), needs=("distill",)),
    "tasks": Suite(("tasks.py",)),
    "peers": Suite(("peers.py",), needs=("tasks",)),
    "gate": Suite(("gate_calibration.py",)),
    "pretrain": Suite(("pretrain_cpu.py",)),
    "gpu": Suite(("gpu.py",)),
}
"""Every suite by name: what it runs and what must exist before it."""


def order(names: list[str]) -> list[str]:
    """The suites asked for and everything they need, each once, needs first."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name not in SUITES:
            raise SystemExit(f"no suite {name!r}; suites: {', '.join(SUITES)}")
        if name in path:
            raise SystemExit(f"suites need each other in a circle: {' -> '.join(path)}")
        for need in SUITES[name].needs:
            visit(need, (*path, name))
        if name not in done:
            done.append(name)
    for name in names:
        visit(name)
    return done


def measured_here(suite: str) -> bool:
    """Whether the store holds rows of this suite at this commit on this machine kind."""
    from edgebert.bench.machine import fingerprint

    here = store.machine_key(fingerprint())
    return bool(store.rows(suite, machine=here, commit=store.git_commit()))


def run(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"EDGEBERT_BENCH_RESULTS": tmp}
        script, *args = SUITES[name].script
        cmd = [sys.executable, str(store.HERE / script), *args]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=env)
        rows = []
        for path in sorted(Path(tmp).rglob("*.json")):
            rows += legacy.convert(path, path.name, store.git_commit(), now())
        store.append(rows)
        print(f"{name}: {len(rows)} rows from results files", flush=True)


def now() -> str:
    import datetime
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suites", nargs="*")
    ap.add_argument("--force", action="store_true", help="run even where the store has rows")
    ap.add_argument("--list", action="store_true", help="the suites and what each needs")
    a = ap.parse_args()
    if a.list or not a.suites:
        for name, s in SUITES.items():
            print(f"{name:<10} {' '.join(s.script):<24} needs: {', '.join(s.needs) or '-'}")
        return
    for name in order(a.suites):
        if not a.force and measured_here(name):
            print(f"{name}: reused (the store has its rows for this commit and machine)")
            continue
        run(name)


if __name__ == "__main__":
    main()
