"""EdgeBERT beside what a user of each alternative gets, from one fine-tuned teacher.

    python benchmarks/peers.py [--run RUN] [--rounds 5]  # -> store rows, suite peers
    python benchmarks/peers.py --table [MACHINE]         # the table of the newest run (epyc-vnni...)

RUN is a finished default `edgebert compress` run on Rotten Tomatoes (default: the one
`python benchmarks/tasks.py rotten-tomatoes` writes). From its teacher, each tool by its
own documented recipe:

- Optimum: `ORTModelForSequenceClassification(export=True)`, `ORTOptimizer` O2, then
  `ORTQuantizer` with the `AutoQuantizationConfig` for this CPU, dynamic
  (benchmarks/peers_optimum.py, in a venv this script makes: optimum-onnx needs
  transformers < 4.58, and nothing of Optimum's becomes an edgebert dependency);
- optimum-intel: `OVModelForSequenceClassification(export=True)` at OpenVINO's default
  precision (bf16 on a CPU with AMX-BF16 or AVX512-BF16), and `OVQuantizer` static INT8
  (NNCF) calibrated on 300 training texts (benchmarks/peers_openvino.py, in its own venv);
- PyTorch: the teacher under `torch.autocast("cpu", dtype=torch.bfloat16)`, where the CPU
  has AMX-BF16 or AVX512-BF16 (elsewhere skipped, and the reason recorded);
- torch.ao: `quantize_dynamic` of the teacher's Linear layers (qint8), traced;
- Intel Neural Compressor: `edgebert quantize --engine inc` on the teacher;
- ONNX Runtime: `quantize_dynamic` with its defaults on a plain FP32 export;

beside EdgeBERT's recommended x86 artifact, its one-file model (tokenizer inside), the
FP32 ONNX export of the same compressed model (what INT8 buys), the teacher in FP32
PyTorch, and a BERT-base-shaped FP32 model (random weights: size and latency only).

Measured in one run, on this machine only: every artifact's accuracy on the whole test
split; latency in one interleaved `edgebert bench` (batch 1, sequence 128, 2 threads,
each turn a process of its own), then again on the task's test texts one at a time (their
own lengths, tokenizing included: what an app sees; INC's program is left out there,
torch.compile would recompile for every length); the fastest peer of the teacher in each
of the two, and the recommended artifact's ratio over it; this CPU's GEMM rate in each
precision (benchmarks/roofline.py: ONNX Runtime MatMulInteger for INT8 and MatMul for
FP32, OpenVINO MatMul for bf16); and the useful operations per second of the recommended
model and of the fastest peers as a fraction of the GEMM rate in their precision.

The peers are built by benchmarks/peer_artifacts.py (its docstring: what the peer venvs
need).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from common import RUNS, record, script_command
from peer_artifacts import (bf16_skipped, build_peers,
                            cpu_flag_set, openvino_default_precision, recommended,
                            recommended_parent, size_mb, texts_file)
from roofline import (gemm_floor, gemm_rates, gemm_shapes, peak_gops,
                      profile_ops, useful_ops)

SUITE = "peers"
@dataclass(frozen=True)
class Row:
    label: str
    """What a user runs, in the README table."""
    precision: str | None = "f32"
    """What its matrix products compute in (int8, bf16, f32); None: OpenVINO's default on
    this CPU (bf16 where the CPU has it)."""
    peer: bool = False
    """One way to run the teacher itself, with another tool: a candidate for the fastest
    peer."""


ROWS = {
    "bert-base-shaped-pytorch": Row("BERT-base-shaped model, FP32 PyTorch (random weights)"),
    "teacher-pytorch": Row("the MiniLM teacher, FP32 PyTorch", peer=True),
    "teacher-bf16": Row("the teacher, PyTorch bf16 autocast", "bf16", peer=True),
    "torch-ao-dynamic": Row("torch.ao `quantize_dynamic` (Linear, qint8), TorchScript", "int8",
                            peer=True),
    "inc-dynamic": Row("Neural Compressor (`quantize --engine inc`), PT2E program", "int8",
                       peer=True),
    "optimum-fp32": Row("Optimum `ORTModelForSequenceClassification(export=True)`", peer=True),
    "optimum-int8": Row("Optimum `ORTQuantizer`, `AutoQuantizationConfig` for this CPU", "int8",
                        peer=True),
    "openvino": Row("optimum-intel `OVModelForSequenceClassification(export=True)`, "
                    "OpenVINO's default precision", None, peer=True),
    "openvino-int8": Row("optimum-intel `OVQuantizer`, static INT8 (NNCF)", "int8", peer=True),
    "ort-quantize-dynamic": Row("ONNX Runtime `quantize_dynamic` (defaults) on a plain export",
                                "int8", peer=True),
    "edgebert-fp32-onnx": Row("EdgeBERT's compressed model, FP32 ONNX (before INT8)"),
    "edgebert-recommended": Row("EdgeBERT `compress`, recommended INT8 artifact", "int8"),
    "edgebert-one-file": Row("EdgeBERT one-file model (tokenizer inside, strings in)", "int8"),
}
"""Every row of the comparison, in the table's order."""


def gemm_precision(path: Path) -> str:
    """What an artifact's matrix products compute in, from its stage.json: what it asks
    OpenVINO for (OpenVINO's default on this CPU where it asks nothing), else its
    precision."""
    record = json.loads((path / "stage.json").read_text())
    if record.get("format") == "openvino" and record.get("precision") != "int8":
        return record.get("inference_precision") or openvino_default_precision()
    return record.get("precision") or "f32"


def gemm_fraction(ops: float, p50_ms: float, rates: list[dict], precision: str) -> dict:
    """Useful operations per second of a model doing `ops` per input in `p50_ms`, against
    this CPU's GEMM rate in `precision` (None where the CPU has no such rate)."""
    useful, peak = ops / (p50_ms / 1000) / 1e9, peak_gops(rates, precision)
    return {"precision": precision, "useful_gop_s": useful, "gemm_peak_gop_s": peak,
            "fraction_of_gemm": useful / peak if peak else None}


def fastest_peer(rows: dict[str, dict], key: str = "p50_ms") -> dict | None:
    """The teacher's peer (ROWS' `peer`) with the lowest `key` (p50_ms: 128 padded
    tokens; texts_p50_ms: the test texts one at a time), and the recommended artifact's
    ratio over it; None where no peer was timed so."""
    timed = {n: r for n, r in rows.items() if n in ROWS and ROWS[n].peer and r.get(key)}
    if not timed:
        return None
    name = min(timed, key=lambda n: timed[n][key])
    rec = rows["edgebert-recommended"][key]
    return {"peer": name, "label": ROWS[name].label, "p50_ms": timed[name][key],
            "test_accuracy": timed[name]["test_accuracy"],
            "delta_vs_teacher_points": timed[name].get("delta_vs_teacher_points"),
            "recommended_p50_ms": rec, "recommended_faster_by": timed[name][key] / rec}


def table(result: dict) -> str:
    """The docs' table of one run: {"rows": {case: metrics}, "fastest_peer": ...}."""
    lines = ["| what a user runs | test accuracy | size | p50, 128 tokens | p50, real texts | "
             "EdgeBERT's recommended artifact is faster by (128 tokens / real texts) |",
             "|---|---|---|---|---|---|"]
    rec = result["rows"]["edgebert-recommended"]
    for name, r in result["rows"].items():
        acc = f"{100 * r['test_accuracy']:.2f} %" if r["test_accuracy"] is not None else "-"
        texts = f"{r['texts_p50_ms']:.2f} ms" if r["texts_p50_ms"] else "-"
        label = ROWS[name].label if name in ROWS else name
        lines.append(f"| {label} | {acc} | {r['size_mb']:.1f} MB | "
                     f"{r['p50_ms']:.2f} ms | {texts} | {r['p50_ms'] / rec['p50_ms']:.1f}x"
                     + (f" / {r['texts_p50_ms'] / rec['texts_p50_ms']:.1f}x |"
                        if r["texts_p50_ms"] else " |"))
    fastest = result.get("fastest_peer") or {}
    p, t = fastest.get("padded"), fastest.get("texts")
    if p:
        lines.append(f"| the fastest peer of the teacher on this CPU: {p['peer']} (128 tokens)"
                     + (f", {t['peer']} (real texts)" if t else "") + f" | | | "
                     f"{p['p50_ms']:.2f} ms | " + (f"{t['p50_ms']:.2f} ms" if t else "-")
                     + f" | {p['recommended_faster_by']:.1f}x"
                     + (f" / {t['recommended_faster_by']:.1f}x |" if t else " |"))
    return "\n".join(lines)


def slim(data: dict) -> dict:
    """A bench result without its flat sample lists (rounds_ms holds the same samples)."""
    return data | {"results": [{k: v for k, v in r.items() if k != "samples_ms"}
                               for r in data["results"]]}


def main() -> None:
    from edgebert.bench.machine import fingerprint
    from edgebert.bench.run import bench
    from edgebert.config import BenchConfig
    from edgebert.targets import native_target

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=RUNS / "tasks" / "rotten-tomatoes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--texts", type=int, default=100, help="test texts timed one at a time")
    ap.add_argument("--table", nargs="?", const="this",
                    help="print the table of the newest run in the store on this machine "
                         "kind (or on MACHINE: epyc-avx2, epyc-vnni, xeon-amx) and stop")
    a = ap.parse_args()
    if a.table:
        import store
        import tables
        print(tables.peers(machine=store.machine_key(fingerprint())
                           if a.table == "this" else a.table))
        return
    if not (a.run / "report.json").exists():
        raise SystemExit(f"{a.run}: not a finished compress run; run "
                         f"`python benchmarks/tasks.py rotten-tomatoes` first")
    work = RUNS / "peers"
    work.mkdir(parents=True, exist_ok=True)
    target = native_target()
    built = build_peers(a.run, work, target)
    arts = {n: built[n] for n in ROWS if n in built}
    machine = fingerprint(2)
    rates = gemm_rates()
    padded = bench([str(p) for p in arts.values()], BenchConfig(runs=a.runs, rounds=a.rounds))
    texts = texts_file(a.run / "teacher", work / "test_texts.txt", a.texts)
    on_texts = bench([str(p) for n, p in arts.items() if n != "inc-dynamic"],
                     BenchConfig(warmup=5, runs=a.texts, rounds=a.rounds), texts=str(texts))
    rows = measured_rows(arts, padded, on_texts)
    opt, rec = rows["optimum-int8"], rows["edgebert-recommended"]
    profile = profile_ops(recommended(a.run) / "model.onnx", work / "ort_profile")
    shapes = gemm_shapes(recommended_parent(a.run))
    ops, floor = useful_ops(shapes), gemm_floor(shapes)
    roofline = gemm_fraction(ops, rec["p50_ms"], rates, gemm_precision(recommended(a.run)))
    teacher_ops = useful_ops(gemm_shapes(a.run / "teacher"))
    fastest = {"padded": fastest_peer(rows), "texts": fastest_peer(rows, "texts_p50_ms")}
    if fastest["padded"]:  # the GEMM rates are of 128-token products: not of the texts
        peer = fastest["padded"]["peer"]
        fastest["padded"] |= gemm_fraction(
            teacher_ops, rows[peer]["p50_ms"], rates,
            ROWS[peer].precision or openvino_default_precision())
    vnni = target == "x86-vnni"
    int8_over_fp32 = rows["edgebert-fp32-onnx"]["p50_ms"] / rec["p50_ms"]
    goals = {
        "recommended_8x_optimum_int8_within_0.3": rec["speedup_vs_optimum_int8"] >= 8
        and rec["test_accuracy"] >= opt["test_accuracy"] - 0.003,
        "recommended_20x_teacher_within_1": rec["speedup_vs_teacher_pytorch"] >= 20
        and rec["delta_vs_teacher_points"] >= -1.0,
        f"int8_over_fp32_export_{'2.5x_vnni' if vnni else '2x_avx2'}":
            int8_over_fp32 >= (2.5 if vnni else 2.0),
        "recommended_at_most_4_mb": rec["size_mb"] <= 4.0,
        "one_file_at_most_4.5_mb": rows["edgebert-one-file"]["size_mb"] <= 4.5,
        f"useful_ops_50pct_of_{roofline['precision']}_gemm":
            (roofline["fraction_of_gemm"] or 0) >= 0.5,
    }
    result = {
        "machine": machine, "target": target, "run": str(a.run),
        "command": script_command(__file__),
        "latency": f"edgebert bench: batch 1, sequence 128, 2 threads, {a.rounds} interleaved "
                   f"rounds x {a.runs} runs, each turn a process of its own; texts: the first "
                   f"{a.texts} test texts one at a time, {a.rounds} rounds, tokenizing "
                   f"included",
        "rows": rows, "fastest_peer": fastest,
        "skipped": {n: why for n, why in [("teacher-bf16", bf16_skipped(cpu_flag_set()))]
                    if why},
        "optimum": json.loads((work / "optimum.json").read_text()),
        "openvino": json.loads((work / "openvino.json").read_text()), "gemm": rates,
        "roofline": {"useful_gop_per_128_token_input": ops / 1e9, **roofline,
                     "int8_over_fp32_export": int8_over_fp32,
                     # the model's GEMMs alone at their own shapes, against its p50
                     "gemm_floor": floor,
                     "gemm_floor_share_of_p50": floor["total_ms"] / rec["p50_ms"]},
        "profile_recommended": profile,
        "goals": goals,
        "bench": {"padded": slim(padded), "texts": slim(on_texts)},
    }
    rows_of(result)
    print(table(result), json.dumps(result["roofline"] | {"gemm_floor": None}),
          json.dumps(goals), sep="\n")


def rows_of(result: dict) -> list:
    """Append the store's rows of one run: one per artifact, and `summary` with the rest
    (the fastest peers, the GEMM rates and roofline, the goals, the peers' own logs); the
    raw bench results (every sample) stay out."""
    rest = {k: v for k, v in result.items() if k not in ("machine", "command", "rows", "bench")}
    return record(SUITE, result["rows"] | {"summary": {"notes": {"run": rest.pop("run")}}
                                           | rest}, threads=2, command=result["command"])


def measured_rows(arts: dict[str, Path], padded: dict, on_texts: dict) -> dict[str, dict]:
    """One row per artifact from the two bench results: accuracy, size, latency, and
    ratios to the teacher and to Optimum's INT8."""
    by_path = {r["path"]: r for r in padded["results"]}
    by_path_t = {r["path"]: r for r in on_texts["results"]}
    rows = {}
    for name, path in arts.items():
        r, t = by_path[str(path)], by_path_t.get(str(path))
        acc = (r.get("accuracy") or {}).get("value")
        rows[name] = {"path": str(path), "format": r["format"], "size_mb": size_mb(path),
                      "test_accuracy": acc, "p50_ms": r["p50_ms"], "p90_ms": r["p90_ms"],
                      "texts_p50_ms": t["p50_ms"] if t else None,
                      "texts_p90_ms": t["p90_ms"] if t else None}
    teacher, opt = rows["teacher-pytorch"], rows["optimum-int8"]
    for row in rows.values():
        row["speedup_vs_teacher_pytorch"] = teacher["p50_ms"] / row["p50_ms"]
        row["speedup_vs_optimum_int8"] = opt["p50_ms"] / row["p50_ms"]
        if row["texts_p50_ms"]:
            row["texts_speedup_vs_optimum_int8"] = opt["texts_p50_ms"] / row["texts_p50_ms"]
        if row["test_accuracy"] is not None:
            row["delta_vs_teacher_points"] = 100 * (row["test_accuracy"]
                                                    - teacher["test_accuracy"])
    return rows

if __name__ == "__main__":
    main()
