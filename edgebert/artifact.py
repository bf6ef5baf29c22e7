"""Artifact directories: written whole or not at all.

A stage works in `<out>.partial/` and, when done, writes `metrics.json` last
and renames the directory to `<out>`. So `<out>/metrics.json` existing means
finished; a killed stage leaves only `<out>.partial/`, which the same command
resumes from (its checkpoint lives there) as long as its options are the same.
A stage that fails removes what it wrote, its checkpoint excepted. Every stage
follows this protocol the same way: `already_done`, then its inputs checked, then
one `with building(...)` block that ends in `finish`.

One process at a time writes an output: it holds an exclusive lock on `<out>.lock`
(`edgebert compress` one on its run directory too), and a second one is refused, naming
the holder. The kernel drops the lock when its holder dies, so a killed run never
blocks the command that resumes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

from edgebert import __version__
from edgebert.errors import UserError



def is_complete(out: Path) -> bool:
    """True when `out` is a finished artifact; completes a rename a kill interrupted."""
    out = Path(out)
    work = partial_dir(out)
    if not out.exists() and (work / "metrics.json").is_file():
        # killed between writing metrics.json and the rename, or a live stage about to
        # rename it itself: only the lock's holder renames
        mine = lock_file(out) in _HELD
        if _try_lock(out) is None:
            return False
        try:
            if not out.exists() and (work / "metrics.json").is_file():
                os.rename(work, out)
        finally:
            if not mine:
                release(out)
    return (out / "metrics.json").is_file()


def already_done(out: Path, log=print, stage: str | None = None) -> bool:
    """True (and says so) when a stage's output is a finished artifact: skip the stage.

    A finished artifact of another stage there (for example `--out` naming the
    input) is an error, not a reason to skip."""
    if is_complete(out):
        made_by = read_json(Path(out) / "stage.json").get("stage") if stage else None
        if stage and made_by != stage:
            raise UserError(f"--out {out}: holds a finished {made_by} artifact, not a {stage} "
                            f"one; choose another directory (a stage never writes over its "
                            f"input)")
        log(f"{out} is already finished (metrics.json present); skipping")
        return True
    return False


_HELD: dict[Path, int] = {}
"""Lock file -> its open descriptor, for the locks this process holds."""


def lock_file(path: Path) -> Path:
    """Where the lock on `path` (an output or run directory) lives: beside it, as the
    directory itself comes into being by a rename.

    >>> lock_file(Path("/runs/tiny/teacher")).name
    'teacher.lock'
    """
    path = Path(path).absolute()
    return path.with_name(path.name + ".lock")


def lock(path: Path) -> None:
    """Hold `path` for this process, or raise a UserError naming the process that holds it.
    A lock this process holds already counts as taken (a stage run again in-process after
    one that failed with it held)."""
    if _try_lock(path) is None:
        raise UserError(f"{path}: in use by {_holder(lock_file(path))}; wait for that run to "
                        f"finish, or choose another --out")


def release(path: Path) -> None:
    """Give up the lock on `path`, if this process holds it."""
    _unlock(lock_file(path))


@contextlib.contextmanager
def locked(path: Path):
    """`lock(path)` for the length of a `with` block.

    >>> # with locked(Path("runs/tiny")): ...  # a run directory, for the whole run
    """
    lock(path)
    try:
        yield
    finally:
        release(path)


def _try_lock(path: Path) -> Path | None:
    """Take the lock on `path` without waiting: its lock file, or None while another
    process holds it."""
    target = lock_file(path)
    if target in _HELD:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(target).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed it as we opened it: lock the file there now
    program = Path(sys.argv[0]).name
    program = "edgebert" if program == "cli.py" else program  # `python -m edgebert.cli`
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "command": shlex.join([program, *sys.argv[1:]]),
              "since": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(holder) + "\n").encode())
    _HELD[target] = fd
    return target


def _unlock(target: Path) -> None:
    fd = _HELD.pop(target, None)
    if fd is None:
        return
    # removed while still locked, so no other process can lock a file about to go (one
    # that opened it already sees, once it holds the lock, that it is gone, and retries)
    target.unlink(missing_ok=True)
    os.close(fd)


def _holder(target: Path) -> str:
    """Who holds the lock, as its lock file says: 'pid 123 on host (command, since ...)'."""
    try:
        who = json.loads(target.read_text())
        return (f"pid {who['pid']} on {who['host']} ({who['command']}, "
                f"since {who['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"  # it has not written its name yet


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def begin(out: Path, stage: str, options: dict, inputs: list[str], restart: bool = False) -> Path:
    """Prepare `<out>.partial`, refusing to write into an input or over foreign files.

    `options` must be JSON-serialisable; a partial run with different options is
    not resumed silently.
    """
    out = Path(out)
    for src in inputs:
        src_path = Path(src).resolve()
        if src_path.exists() and (out.resolve() == src_path or src_path in out.resolve().parents
                                  or out.resolve() in src_path.parents):
            raise UserError(f"--out {out}: overlaps the input {src}; a stage never writes into "
                            f"its input, choose another directory")
    lock(out)  # released by finish, or by `building` when the stage fails
    try:
        return _prepare(out, {"stage": stage, "options": options}, restart)
    except BaseException:
        release(out)
        raise


def _prepare(out: Path, record: dict, restart: bool) -> Path:
    """`<out>.partial` with `record` (stage and options) in its options.json."""
    if out.exists():
        raise UserError(f"--out {out}: exists and is not a finished artifact (no metrics.json); "
                        f"remove it or choose another directory")
    work = partial_dir(out)
    marker = work / "options.json"
    if work.exists() and restart:
        shutil.rmtree(work)
    if work.exists():
        if marker.exists():
            before = json.loads(marker.read_text())
            if before != json.loads(json.dumps(record)):
                changed = _diff(before.get("options", {}), record["options"])
                raise UserError(f"--out {out}: an unfinished run with other options is there "
                                f"({changed}); rerun with the same options to resume, or pass "
                                f"--restart to discard it")
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create {work} ({err.strerror})") from None
    write_json(marker, record)
    return work


@contextlib.contextmanager
def building(out: Path, stage: str, options: dict, inputs: list[str], restart: bool = False):
    """Build the artifact `out` of `stage` in `<out>.partial/`, the directory this yields;
    the block publishes it with `finish` (stage.json, metrics.json last, then the rename).

    On entry, `begin`: `out` locked, never inside an input, an unfinished run with the same
    options resumed (or discarded with `restart`). If the block fails, what it wrote goes,
    except a training checkpoint to resume from, and the lock is given up. Check for a
    finished artifact with `already_done`, and check the inputs, before entering: a bad
    input then writes nothing at all.

        >>> # if artifact.already_done(out, log, "export"):
        >>> #     return out
        >>> # opened = open_artifact(cfg.model)  # every input checked first
        >>> # with artifact.building(out, "export", to_dict(cfg), [str(opened.path)]) as work:
        >>> #     ...  # write the model into work
        >>> #     return artifact.finish(work, out, record, metrics)
    """
    work = begin(out, stage, options, inputs, restart)
    try:
        with discarded_on_failure(work):
            yield work
    except BaseException:
        release(out)
        raise


@contextlib.contextmanager
def discarded_on_failure(work: Path):
    """Remove the directory `work` if the block fails, unless it holds a training
    checkpoint (`<work>/checkpoint`): half a model is worth nothing, a checkpoint is where
    the same command resumes."""
    try:
        yield work
    except BaseException:
        if not (work / "checkpoint").exists():
            shutil.rmtree(work, ignore_errors=True)
        raise


def finish(work: Path, out: Path, stage: dict, metrics: dict) -> Path:
    """Write stage.json, then metrics.json, then rename `work` to `out`."""
    shutil.rmtree(work / "checkpoint", ignore_errors=True)
    (work / "options.json").unlink(missing_ok=True)
    write_json(work / "stage.json", stage | {"edgebert": __version__,
                                              "created": dt.datetime.now(dt.UTC).isoformat()})
    write_json(work / "metrics.json", metrics)
    os.rename(work, out)
    release(out)
    return out


def write_json(path: Path, data) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def max_tokens(path: str | Path) -> int | None:
    """The most tokens an artifact takes when quantize cut its position table (its
    metrics.json's `positions`), else None: no cut, any length its model allows."""
    metrics = Path(path) / "metrics.json"
    made = (read_json(metrics).get("positions") or {}) if metrics.exists() else {}
    return made["max_tokens"] if made.get("kept") else None


def parent_in_run(run: Path, recorded: str) -> Path | None:
    """The run's own copy of a stage's parent. stage.json records the parent as the path
    the stage was given, relative to where it ran (`runs/default/pruned_trimmed`), so a
    script run from elsewhere, or a moved run, finds it by its last 1-3 parts.

    >>> parent_in_run(Path("/nonexistent/run"), "runs/default/pruned") is None
    True
    """
    parts = Path(recorded).parts
    for n in (1, 2, 3):
        if (run.joinpath(*parts[-n:]) / "stage.json").exists():
            return run.joinpath(*parts[-n:])
    return None


def dir_size_mb(path: Path, suffixes=(".safetensors", ".onnx", ".ort", ".pt", ".bin")) -> float:
    """Size of the top-level weight files, in MB (1e6 bytes); checkpoints not counted."""
    return sum(f.stat().st_size for f in Path(path).iterdir()
               if f.is_file() and f.suffix in suffixes) / 1e6


def _diff(a: dict, b: dict, prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            inner = _diff(va, vb, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return "; ".join(diffs)
