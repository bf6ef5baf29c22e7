"""Run named benchmark suites, each after what it needs; each script adds its rows to the
store (benchmarks/results/results.jsonl).

    python benchmarks/run.py int8            # teacher, distill, then int8 (each once)
    python benchmarks/run.py peers --force   # measure again though the store has rows
    python benchmarks/run.py --list

A suite whose rows the store already holds for this commit and machine kind is reused,
not run again. Run directories live under $EDGEBERT_BENCH_RUNS (default runs/bench).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import common
import store
from common import RUNS


@dataclass(frozen=True)
class Suite:
    script: tuple[str, ...]
    """The script under benchmarks/ and its arguments: {runs} is $EDGEBERT_BENCH_RUNS,
    {native} this CPU's x86 target, {python} this interpreter."""
    needs: tuple[str, ...] = ()
    """Suites whose run directories it reads (under EDGEBERT_BENCH_RUNS)."""


RT = "{runs}/tasks/rotten-tomatoes"
"""The default recipe's run on Rotten Tomatoes, as the tasks suite makes it."""
SUITES = {
    "teacher": Suite(("teacher.py", "rt")),
    "distill": Suite(("distill.py",), needs=("teacher",)),
    "prune": Suite(("prune.py",), needs=("distill",)),
    "int8": Suite(("int8.py",), needs=("distill",)),
    "int8_inc": Suite(("int8_inc.py",), needs=("int8",)),
    "albert_int8": Suite(("albert_int8.py",)),
    "factorized_embeddings": Suite(("factorized_embeddings.py",)),
    "stack_latency": Suite(("stack_latency.py", "{runs}/teacher_rt", "{python}",
                            ".venv-newest/bin/python"), needs=("teacher",)),
    "tasks": Suite(("tasks.py",)),
    "peers": Suite(("peers.py",), needs=("tasks",)),
    "compress_default": Suite(("compress_default.py", RT), needs=("tasks",)),
    "int8_variants": Suite(("int8_variants.py", "--run", RT), needs=("tasks",)),
    "ort_session_options": Suite(("ort_session_options.py", "--run", RT), needs=("tasks",)),
    "text_in_graph": Suite(("text_in_graph.py", "--run", RT), needs=("tasks",)),
    "embed1": Suite(("embed1.py", RT), needs=("tasks",)),
    "embed4": Suite(("embed4.py", RT + "/int8/{native}", "--bench"), needs=("tasks",)),
    "binary_threshold": Suite(("binary_threshold.py", "{runs}/tasks/sms-spam"),
                              needs=("tasks",)),
    "multiple_choice": Suite(("multiple_choice.py",)),
    "gate": Suite(("gate_calibration.py",)),
    "learned_prune": Suite(("learned_prune.py", "trec-50"), needs=("tasks",)),
    "phones": Suite(("phones.py", RT), needs=("tasks",)),
    "train_speed": Suite(("train_speed.py", RT + "/teacher"), needs=("tasks",)),
    "bench_turns": Suite(("bench_turns.py", RT), needs=("tasks",)),
    "pretrain": Suite(("pretrain_cpu.py",)),
    "gpu": Suite(("gpu.py",)),
}
"""Every suite by name (the name its script writes its rows under): what it runs and what
must exist before it."""


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


def command(name: str) -> list[str]:
    """The command line of a suite, its placeholders filled."""
    from edgebert.targets import native_target

    script, *args = SUITES[name].script
    fill = {"runs": str(RUNS), "python": sys.executable}
    if any("{native}" in a for a in args):
        fill["native"] = native_target()
    return [sys.executable, str(store.HERE / script), *(a.format(**fill) for a in args)]


def run(name: str) -> None:
    before = len(store.load(store.STORE))
    common.run(command(name))
    print(f"{name}: {len(store.load(store.STORE)) - before} rows added", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suites", nargs="*")
    ap.add_argument("--force", action="store_true", help="run even where the store has rows")
    ap.add_argument("--list", action="store_true", help="the suites and what each needs")
    a = ap.parse_args()
    if a.list or not a.suites:
        for name, s in SUITES.items():
            needs = f"  (needs {', '.join(s.needs)})" if s.needs else ""
            print(f"{name:<22} {' '.join(s.script)}{needs}")
        return
    for name in order(a.suites):
        if not a.force and measured_here(name):
            print(f"{name}: reused (the store has its rows for this commit and machine)")
            continue
        run(name)


if __name__ == "__main__":
    main()
