"""ExecuTorch beside ONNX Runtime for phones, from a finished default chain.

    python benchmarks/phones.py [RUN]   # -> store rows, suite phones: the chain's arm64
                                        #    INT8 and the .pte INT8 of the same model

RUN is a finished `edgebert compress` run (default: the Rotten Tomatoes one that
`python benchmarks/tasks.py rotten-tomatoes` writes). Needs `executorch` in this Python
(`pip install 'edgebert[executorch]'`) and, for the aarch64 check, `edgebert arm-env`
with `g++-aarch64-linux-gnu`. Exports the model the chain's arm64 INT8 was made from as
an ExecuTorch INT8 program (`edgebert export --format executorch --precision int8`, the
recipe's budget against that model) into RUN/export/executorch-bench, then compares it
on emulated aarch64 with x86 over the whole dev split (`edgebert arm-env --check
--examples 0`), and records both artifacts' test metric against the teacher, size, word
table and agreement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import common
from common import record, run, script_command, usage

SUITE = "phones"


def metrics_of(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


def main(chain: Path) -> None:
    teacher, arm = metrics_of(chain / "teacher"), chain / "int8" / "arm64"
    parent = chain / Path(json.loads((arm / "stage.json").read_text())["parent"]).name
    pte = chain / "export" / "executorch-bench"
    edgebert = ["edgebert"]
    seconds = None
    if not (pte / "metrics.json").exists():
        seconds = round(run([*edgebert, "export", "--model", parent, "--format", "executorch",
                             "--precision", "int8", "--out", pte]), 1)
    print("+", " ".join(map(str, [*edgebert, "arm-env", "--check", pte, "--examples", "0"])),
          flush=True)
    done = subprocess.run([*edgebert, "arm-env", "--check", str(pte), "--examples", "0"],
                          capture_output=True, text=True, check=True)
    whole_dev = json.loads(done.stdout[done.stdout.index("{"):])
    metric = teacher["metric"]

    def row(path: Path, extra: dict) -> dict:
        m = metrics_of(path)
        return {"artifact": str(path.relative_to(chain)), "parent": str(parent.name),
                "size_mb": m["size_mb"], "accuracy": m["test"][metric],
                "teacher_accuracy": teacher["test"][metric],
                "delta_vs_teacher": 100 * (m["test"][metric] - teacher["test"][metric]),
                "arm64_emulation": m.get("arm64_emulation") or (m.get("parity") or {}).get(
                    "arm64_emulation")} | extra

    p = metrics_of(pte)
    record(SUITE, {
        "onnxruntime int8/arm64": row(arm, {}),
        "executorch int8": row(pte, {"word_table": p.get("word_table"),
                                     "delta_vs_parent_dev": p.get("delta_vs_fp32_dev"),
                                     "lowering_parity": p.get("lowering_parity"),
                                     "arm64_whole_dev": whole_dev,
                                     "export_seconds": seconds}),
    }, command=script_command(__file__))


if __name__ == "__main__":
    usage(__doc__)
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else common.RUNS / "tasks" / "rotten-tomatoes")
