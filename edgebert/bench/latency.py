"""Interleaved latency: A B C, B C A, C A B ..., each turn a process of its own, so the
artifacts share the machine's noise, never share a thread pool, and none always
runs right after the same neighbour. A turn's process times every workload of the
run (each batch x seq of the grid, the texts), one after the other on the model it
opened: a process per artifact and round, not per workload, since starting one
(importing the runtime, loading the model) costs more than timing a workload. On
Linux each turn's process is forked from a server that imported its runtime once
(`Turns`): a PyTorch turn then starts in under a second instead of 4-5.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from edgebert.errors import UserError


@dataclass(frozen=True)
class Workload:
    """What a worker times after loading the artifact: batch x seq padded inputs, or with
    `texts` (a JSON file of strings) those texts one at a time; after `warmup` untimed
    runs, `runs` timed ones."""

    batch: int = 1
    seq: int = 128
    texts: str | None = None
    warmup: int = 10
    runs: int = 30

    def label(self) -> str:
        return "texts" if self.texts else f"batch {self.batch}, sequence {self.seq}"

    def as_worker(self) -> dict:
        """As the worker's --workloads takes it."""
        keep = ("texts",) if self.texts else ("batch", "seq")
        return {k: v for k, v in asdict(self).items() if k in keep + ("warmup", "runs")}


def interleaved(paths: dict[str, str], rounds: int = 8, runs: int = 30, warmup: int = 10,
                batch: int = 1, seq: int = 128, threads: int = 2, log=print,
                keep_samples: bool = False, texts: str | None = None,
                fork: bool | None = None) -> dict[str, dict]:
    """Latency summary per name: p50/p90/p99/mean/stdev in ms, over rounds * runs samples,
    of one workload: batch x seq padded inputs, or `texts` (a JSON file of strings) timed
    one at a time instead. `fork`: as `Turns` takes it."""
    return interleaved_workloads(paths, [Workload(batch, seq, texts, warmup, runs)],
                                 rounds=rounds, threads=threads, log=log,
                                 keep_samples=keep_samples, fork=fork)[0]


def interleaved_workloads(paths: dict[str, str], workloads: list[Workload], rounds: int = 8,
                          threads: int = 2, log=print, keep_samples: bool = False,
                          fork: bool | None = None) -> list[dict[str, dict]]:
    """`interleaved` over several workloads in one pass: each round runs one process per
    artifact (the order rotated), which times every workload in turn; one {name: summary}
    per workload, in their order. Each summary's peak_rss_mb is the highest over its
    rounds of what the process held for that workload (`worker.time_workloads`), from the
    rounds run in a fresh interpreter: the first one, where later ones are forked (`fork`,
    as `Turns` takes it), since a forked process does not count the library pages it
    inherited and never touched (83 MB of a PyTorch model's 495 here) and an app pays
    them."""
    names = list(paths)
    samples = [{name: [] for name in names} for _ in workloads]
    groups = [{name: [] for name in names} for _ in workloads]  # one list per process
    rss: list[dict[str, float]] = [{} for _ in workloads]
    listed = [w.as_worker() for w in workloads]
    with Turns(threads, fork) as turn:
        for r in range(rounds):
            # rotate the order each round (A B C, B C A, C A B): a process that always
            # follows a heavy one (caches, memory, clocks) would otherwise carry a fixed bias
            for name in names[r % len(names):] + names[:r % len(names)]:
                fresh = r == 0 or not turn.fork
                for i, res in enumerate(turn(str(paths[name]), listed, fresh)["results"]):
                    samples[i][name] += res["samples_ms"]
                    groups[i][name].append(res["samples_ms"])
                    if fresh:
                        rss[i][name] = max(rss[i].get(name, 0.0), res["peak_rss_mb"])
            for w, s in zip(workloads, samples):
                where = f" {w.label()}" if len(workloads) > 1 else ""
                log(f"round {r + 1}/{rounds}{where}: " + ", ".join(
                    f"{n} {statistics.median(x):.2f} ms" for n, x in s.items()))
    return [{name: summary(s, w.batch if not w.texts else 1) | {"peak_rss_mb": rss[i][name]}
             | ({"samples_ms": s, "rounds_ms": groups[i][name]} if keep_samples else {})
             for name, s in samples[i].items()} for i, w in enumerate(workloads)]


def forking(fork: bool | None, rounds: int = 2) -> bool:
    """Whether turns after the first round are forked: `fork`, or by default on Linux;
    never with one round."""
    return rounds > 1 and (sys.platform.startswith("linux") if fork is None else fork)


class Turns:
    """Runs a turn (one artifact, every workload: `worker.time_workloads`) in a process of
    its own and returns what it answered ({"pid", "results"}); a context manager.

    With `fork` (the default on Linux) the process is forked from a server per format
    (`worker.serve`) that imported the runtime and the format's `preload` once and opened
    no model: the turn still opens its model, starts its thread pools and allocates its
    buffers itself, and exits. Without, it is a fresh interpreter (`python -m
    edgebert.bench.worker`), which pays the imports every turn."""

    def __init__(self, threads: int, fork: bool | None = None):
        self.threads = threads
        self.fork = forking(fork)
        self.servers: dict[str, tuple[subprocess.Popen, object]] = {}

    def __enter__(self) -> Turns:
        return self

    def __exit__(self, *exc) -> None:
        for server, log in self.servers.values():
            with contextlib.suppress(OSError):  # a server that died: its pipe is broken
                server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()
            log.close()
        self.servers.clear()

    def __call__(self, path: str, workloads: list[dict], fresh: bool = False) -> dict:
        """`fresh`: in a fresh interpreter even where turns are forked."""
        if fresh or not self.fork:
            cmd = [sys.executable, "-m", "edgebert.bench.worker", path, "--threads",
                   str(self.threads), "--workloads", json.dumps(workloads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
                raise UserError(f"{path}: the timing process failed ({tail[0][:300]})")
            return json.loads(out.stdout.strip().splitlines()[-1])
        server, log = self._server(path)
        try:
            server.stdin.write(json.dumps({"path": path, "workloads": workloads,
                                           "threads": self.threads}) + "\n")
            server.stdin.flush()
            line = server.stdout.readline()
        except OSError:  # it died between turns (the OOM killer)
            line = ""
        if not line:
            code = server.wait()
            log.seek(0)
            tail = log.read().strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"{path}: the timing server stopped (exit status {code}; its "
                            f"last words: {tail[0][:300]})")
        answer = json.loads(line)
        if "error" in answer:
            raise UserError(f"{path}: the timing process failed ({answer['error'][:300]})")
        return answer

    def _server(self, path: str):
        """The server of `path`'s format, started on first use (one per format, not per
        runtime: a TorchScript turn forked from a server that imported transformers would
        hold transformers' memory too); its stderr (the turns' warnings too) goes to a
        temporary file, read back when it stops."""
        from edgebert.bench.worker import timed_file
        from edgebert.formats import FORMATS

        fmt = FORMATS[timed_file(path)[1]]
        if fmt.name not in self.servers:
            preload = (fmt.runtime, *fmt.preload)
            log = tempfile.TemporaryFile("w+")
            server = subprocess.Popen(
                [sys.executable, "-m", "edgebert.bench.worker", "--serve", ",".join(preload)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
            self.servers[fmt.name] = (server, log)
        return self.servers[fmt.name]


def summary(samples: list[float], batch: int = 1) -> dict:
    """Percentiles (linear interpolation, numpy's default), mean, spread, throughput.

    >>> summary([1.0, 2.0, 3.0, 4.0])["p50_ms"]
    2.5
    """
    a = np.asarray(samples)
    p50 = float(np.percentile(a, 50))
    return {"p50_ms": p50, "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "stdev_ms": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "iqr_ms": float(np.percentile(a, 75) - np.percentile(a, 25)),
            "throughput_seq_s": 1000.0 * batch / p50 if p50 > 0 else 0.0, "n": len(a)}
