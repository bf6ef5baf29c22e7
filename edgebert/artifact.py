"""Artifact directories: written whole or not at all.

A stage works in `<out>.partial/` and, when done, writes `metrics.json` last
and renames the directory to `<out>`. So `<out>/metrics.json` existing means
finished; a killed stage leaves only `<out>.partial/`, which the same command
resumes from (its checkpoint lives there) as long as its options are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from edgebert import __version__
from edgebert.errors import UserError



def is_complete(out: Path) -> bool:
    """True when `out` is a finished artifact; completes a rename a kill interrupted."""
    out = Path(out)
    work = partial_dir(out)
    if not out.exists() and (work / "metrics.json").is_file():
        os.rename(work, out)  # killed between writing metrics.json and the rename
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


_OPEN: set[Path] = set()
"""Partial directories this process began and has not finished."""


def discard_unstarted() -> None:
    """Remove this process's partial directories that hold no checkpoint: after a bad
    input stops a stage there is nothing in them worth resuming."""
    for work in list(_OPEN):
        if not (work / "checkpoint").exists():
            shutil.rmtree(work, ignore_errors=True)
        _OPEN.discard(work)


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
    if out.exists():
        raise UserError(f"--out {out}: exists and is not a finished artifact (no metrics.json); "
                        f"remove it or choose another directory")
    work = partial_dir(out)
    record = {"stage": stage, "options": options}
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
    _OPEN.add(work)
    return work


def finish(work: Path, out: Path, stage: dict, metrics: dict) -> Path:
    """Write stage.json, then metrics.json, then rename `work` to `out`."""
    shutil.rmtree(work / "checkpoint", ignore_errors=True)
    (work / "options.json").unlink(missing_ok=True)
    write_json(work / "stage.json", stage | {"edgebert": __version__,
                                              "created": dt.datetime.now(dt.UTC).isoformat()})
    write_json(work / "metrics.json", metrics)
    os.rename(work, out)
    _OPEN.discard(work)
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
