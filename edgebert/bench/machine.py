"""What a latency figure was measured on: CPU, INT8-relevant flags, cores, libraries."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform

from edgebert.cpu import BF16_FLAGS, cpu_flags


def fingerprint(threads: int | None = None) -> dict:
    info = cpu_flags()
    versions = {}
    for pkg in ("onnxruntime", "torch", "transformers", "huggingface-hub", "tokenizers", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass  # the torch-free bench on a phone or board has only onnxruntime and numpy
    return {"cpu": info["cpu"], "machine": info["machine"], "flags": info["flags"],
            "cores": os.cpu_count(), "threads": threads, "os": platform.platform(),
            "python": platform.python_version(), "libraries": versions}


def same_machine(a: dict, b: dict) -> tuple[bool, list[str]]:
    """Whether two fingerprints describe comparable machines, and what differs. The bf16
    flags are compared only where both records list some: a record made before they were
    read has none, on the same CPU."""
    keys = ("cpu", "machine", "flags", "cores", "threads")
    fa, fb = set(a.get("flags") or []), set(b.get("flags") or [])
    if not (fa & BF16_FLAGS and fb & BF16_FLAGS):
        fa, fb = fa - BF16_FLAGS, fb - BF16_FLAGS
    got = {"a": a | {"flags": sorted(fa)}, "b": b | {"flags": sorted(fb)}}
    diffs = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys
             if got["a"].get(k) != got["b"].get(k)]
    return not diffs, diffs
