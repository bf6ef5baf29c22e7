"""`edgebert bench`: a grid of batch sizes and sequence lengths over several
artifacts, interleaved, written as versioned JSON.

Schema `edgebert.bench/1`:

    {"schema": "edgebert.bench/1", "created": ISO time,
     "machine": {cpu, machine, flags, cores, threads, os, python, libraries},
     "settings": {threads, warmup, runs, rounds, turns: "fresh" or "forked"},
     "results": [{"artifact", "path", "format", "batch", "seq", "source",
                  "samples_ms": [...], "rounds_ms": [[...] per process], "p50_ms", "p90_ms", "p99_ms", "mean_ms",
                  "stdev_ms", "iqr_ms", "throughput_seq_s", "n", "peak_rss_mb",
                  "accuracy": {metric, value, split} or null,
                  "timed_as": "x86 XNNPACK" (only where a format names its kernels)}]}

`source` is "measured" here, "imported" for results brought from another device. `turns`:
"fresh" where every turn was a fresh interpreter (`--fresh`, the CI gate, and every result
written before the key existed), "forked" where the turns after the first round were forked
from a server per format.
Each artifact's turn is one process that times every workload (the grid's points, the
texts) on the model it opened once (`latency.interleaved_workloads`); on Linux the turns
after the first are forked from a server that imported the runtime once (`latency.Turns`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

from edgebert.bench.latency import Workload, forking, interleaved_workloads
from edgebert.bench.machine import fingerprint
from edgebert.config import BenchConfig
from edgebert.errors import UserError
from edgebert.formats import FORMAT, model_file

SCHEMA = "edgebert.bench/1"


def artifact_format(path: Path) -> str:
    found = model_file(path)
    if found is None:
        raise UserError(f"{path}: not an artifact (a directory with "
                        f"{', '.join(FORMAT)}, or one of those files)")
    return found[1]


def timed_as(path: Path, machine: dict) -> dict:
    """What a result of `path` times, where its format names its kernels: {"timed_as":
    "x86 XNNPACK"} for an ExecuTorch program on this x86 machine (not a phone's latency)."""
    from edgebert.cpu import is_arm
    from edgebert.formats import FORMATS

    kernels = FORMATS[artifact_format(path)].kernels
    arch = "arm64" if is_arm(machine.get("machine")) else "x86"
    return {"timed_as": f"{arch} {kernels}"} if kernels else {}


def accuracy_of(path: Path) -> dict | None:
    metrics = (path if path.is_dir() else path.parent) / "metrics.json"
    if not metrics.exists():
        return None
    m = json.loads(metrics.read_text())
    name = m.get("metric")
    if not name or name not in m.get("test", {}):
        return None
    return {"metric": name, "value": m["test"][name], "split": "test"}


def bench(paths: list[str], cfg: BenchConfig, log=print, texts: str | None = None,
          workloads: list[Workload] | None = None, fork: bool | None = None) -> dict:
    """Time `paths` interleaved on the cfg.batch x cfg.seq grid of padded inputs. `texts`: a
    file of texts, one per line: instead of the grid, time each artifact on them one at a
    time (batch 1, their own lengths, tokenizing included); those results have "seq":
    "texts" and a "texts" entry (file, count, mean characters). `workloads`: these instead
    (`grid(cfg)`, a Workload whose `texts` is such a file), all timed by each turn's one
    process: a result per (artifact, workload), workload by workload, as separate benches
    of each would write them. `fork`: as `latency.Turns` takes it.

    >>> # bench(["runs/rt/teacher", "runs/rt/int8/x86-avx2"], BenchConfig(batch=[1, 8]))
    """
    threads, warmup, runs, rounds = cfg.threads, cfg.warmup, cfg.runs, cfg.rounds
    if workloads is None:
        workloads = grid(cfg) if texts is None else [Workload(texts=texts, warmup=warmup,
                                                              runs=runs)]
    named = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise UserError(f"{p}: no such artifact")
        artifact_format(path)
        name = path.name if path.is_dir() else f"{path.parent.name}/{path.name}"
        name = name if name not in named else p
        while name in named:  # the same path twice: an A/A trial of the gate
            name += " (again)"
        named[name] = path
    machine = fingerprint(threads)
    if len(workloads) > 1:
        log("each process times, in turn: " + "; ".join(w.label() for w in workloads))
    elif workloads and not workloads[0].texts:
        log(f"{workloads[0].label()}:")
    read: list[tuple[list[str], str] | None] = []  # a texts workload's lines, a JSON copy
    try:
        for w in workloads:
            read.append(_texts(w.texts) if w.texts else None)
        lats = interleaved_workloads(
            {n: str(p) for n, p in named.items()},
            [replace(w, texts=r[1]) if r else w for w, r in zip(workloads, read)],
            rounds=rounds, threads=threads, log=log, keep_samples=True, fork=fork)
    finally:
        for r in read:
            if r:
                Path(r[1]).unlink()
    results = []
    for w, r, lat in zip(workloads, read, lats):
        setting = {"batch": w.batch, "seq": w.seq} if r is None else {
            "batch": 1, "seq": "texts", "texts": {"file": str(w.texts), "count": len(r[0]),
                                                  "mean_chars": sum(map(len, r[0])) / len(r[0])}}
        for name, path in named.items():
            results.append({"artifact": name, "path": str(path),
                            "format": artifact_format(path)} | setting
                           | {"source": "measured"} | lat[name] | timed_as(path, machine)
                           | {"accuracy": accuracy_of(path)})
    return {"schema": SCHEMA, "created": dt.datetime.now(dt.UTC).isoformat(),
            "machine": machine,
            "settings": {"threads": threads, "warmup": warmup, "runs": runs, "rounds": rounds,
                         "turns": "forked" if forking(fork, rounds) else "fresh"},
            "results": results}


def grid(cfg: BenchConfig) -> list[Workload]:
    """The cfg.batch x cfg.seq grid of padded inputs, batch by batch, at cfg's warm-up and
    runs."""
    return [Workload(batch=b, seq=s, warmup=cfg.warmup, runs=cfg.runs)
            for b in cfg.batch for s in cfg.seq]


def task_workloads(cfg: BenchConfig, texts: Path | None, count: int) -> list[Workload]:
    """What a chain times (`compress`'s latency step): the grid, then, where `texts` (a
    file of the task's test texts) is given, `count` of them one at a time after half the
    warm-up, each process timing both."""
    extra = [Workload(texts=str(texts), warmup=cfg.warmup // 2, runs=count)] if texts else []
    return grid(cfg) + extra


def covers(result: Path, models: list) -> bool:
    """Whether the bench result file `result` exists and timed every one of `models`."""
    if not result.exists():
        return False
    timed = {Path(r["path"]).resolve() for r in load(result)["results"]}
    return timed >= {Path(m).resolve() for m in models}


def _texts(path: str) -> tuple[list[str], str]:
    """The non-empty lines of a text file, and a JSON copy of them for the workers."""
    import tempfile

    try:
        lines = [x for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--texts {path}: cannot read it ({err})") from None
    if not lines:
        raise UserError(f"--texts {path}: no texts (one per line)")
    fd, listed = tempfile.mkstemp(suffix=".json", prefix="edgebert-texts-")
    with open(fd, "w", encoding="utf-8") as f:
        json.dump(lines, f)
    return lines, listed


def task_texts(teacher: Path, count: int, path: Path) -> Path | None:
    """The first `count` test texts of the task `teacher` was trained on, one per line, for
    `bench --texts`; None where its examples are not single texts (pairs, tokens, QA)."""
    from edgebert.artifacts_io import open_artifact

    examples = open_artifact(teacher).task.splits["test"][:count]
    if not examples or not all(isinstance(getattr(e, "text", None), str)
                               and getattr(e, "text_pair", None) is None for e in examples):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(e.text.split()) + "\n" for e in examples))
    return path


def load(path: str | Path) -> dict:
    """Read a bench result, checking its schema."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read a bench result ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{path}: not an {SCHEMA} result (schema: "
                        f"{data.get('schema') if isinstance(data, dict) else None!r})")
    for i, r in enumerate(data.get("results", [])):
        missing = {"artifact", "batch", "seq", "samples_ms"} - set(r)
        if missing:
            raise UserError(f"{path}: results[{i}] lacks {', '.join(sorted(missing))}")
    return data


def imported(data: dict) -> dict:
    """Mark every result of a bench file from another device as imported."""
    for r in data["results"]:
        r["source"] = "imported"
        r["device"] = data["machine"].get("cpu")
    return data
