"""One model in PyTorch FP32 under two Pythons (two transformers versions), alternated.

    python benchmarks/stack_latency.py MODEL_DIR .venv/bin/python .venv-newest/bin/python

Each measurement is its own process (`edgebert.bench.worker`: batch 1, sequence 128,
2 threads, 10 warm-up and 30 timed runs), the two interpreters alternated for 6 rounds
with the order flipped every round. Prints the per-round medians and the ratio, and
appends them as a store row (suite stack_latency, the case MODEL_DIR's name), the median
per transformers version.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from common import record, script_command

ROOT = Path(__file__).resolve().parent.parent
SUITE = "stack_latency"


def main(model: str, *pythons: str) -> dict:
    versions = {py: subprocess.run([py, "-c", "import transformers; print(transformers.__version__)"],
                                   capture_output=True, text=True, check=True).stdout.strip()
                for py in pythons}
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    rounds: dict[str, list[float]] = {versions[py]: [] for py in pythons}
    for r in range(6):
        for py in (pythons if r % 2 == 0 else pythons[::-1]):
            out = subprocess.run([py, "-m", "edgebert.bench.worker", model, "--seq", "128",
                                  "--warmup", "10", "--runs", "30", "--threads", "2"],
                                 capture_output=True, text=True, env=env, check=True)
            samples = json.loads(out.stdout.strip().splitlines()[-1])["samples_ms"]
            rounds[versions[py]].append(round(statistics.median(samples), 2))
    first, second = (versions[py] for py in pythons[:2])
    median = {v: statistics.median(r) for v, r in rounds.items()}
    result = {"p50_ms": median, "p50_ms_per_round": rounds,
              "ratio": median[second] / median[first],
              "notes": {"ratio": f"transformers {second} / {first}"}}
    print(json.dumps(result, indent=1))
    record(SUITE, {Path(model).name: result}, threads=2,
           command=script_command(__file__, [model, *pythons]),
           libraries={"transformers": " vs ".join(versions.values())})
    return result


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
