"""EdgeBERT beside what a user of each alternative gets, from one fine-tuned teacher.

    python benchmarks/peers.py [--run RUN] [--rounds 5] [--out peers.json]  # -> benchmarks/results/
    python benchmarks/peers.py --table [RESULTS_FILE]       # its README table

RUN is a finished default `edgebert compress` run on Rotten Tomatoes (default: the one
`python benchmarks/tasks.py rotten-tomatoes` writes). From its teacher, each tool by its
own documented recipe:

- Optimum: `ORTModelForSequenceClassification(export=True)`, `ORTOptimizer` O2, then
  `ORTQuantizer` with the `AutoQuantizationConfig` for this CPU, dynamic
  (benchmarks/peers_optimum.py, in a venv this script makes: optimum-onnx needs
  transformers < 4.58, and nothing of Optimum's becomes an edgebert dependency);
- torch.ao: `quantize_dynamic` of the teacher's Linear layers (qint8), traced;
- Intel Neural Compressor: `edgebert quantize --engine inc` on the teacher;
- ONNX Runtime: `quantize_dynamic` with its defaults on a plain FP32 export;

beside EdgeBERT's recommended x86 artifact, its one-file model (tokenizer inside), the
FP32 ONNX export of the same compressed model (what INT8 buys), the teacher in FP32
PyTorch, and a BERT-base-shaped FP32 model (random weights: size and latency only).

Measured in one run, on this machine only: every artifact's accuracy on the whole test
split; latency in one interleaved `edgebert bench` (batch 1, sequence 128, 2 threads,
each turn a fresh process), then again on the task's test texts one at a time (their
own lengths, tokenizing included: what an app sees; INC's program is left out there,
torch.compile would recompile for every length); this CPU's INT8 GEMM rate (ONNX
Runtime MatMulInteger) and FP32 MatMul rate; and the recommended model's useful
operations per second as a fraction of the INT8 rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = Path(os.environ.get("EDGEBERT_BENCH_RESULTS", HERE / "results"))
RUNS = Path(os.environ.get("EDGEBERT_BENCH_RUNS", "runs/bench"))
PEER_PINS = ["optimum-onnx[onnxruntime]==0.1.0", "optimum==2.1.0", "transformers==4.57.6",
             "torch==2.13.0", "onnxruntime==1.32.0"]
"""The peer venv: Optimum's current release and the stack it supports."""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", shlex.join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def peer_venv(work: Path) -> Path:
    python = work / "venv" / "bin" / "python"
    if not python.exists():
        sh([sys.executable, "-m", "venv", work / "venv"])
        sh([python, "-m", "pip", "install", "-q", *PEER_PINS])
    return python


def size_mb(path: Path) -> float:
    """The size of the one file the artifact runs from (the .ort, not the .onnx beside it)."""
    from edgebert.formats import model_file

    return model_file(path)[0].stat().st_size / 1e6


def score_into(path: Path, forward, opened, test) -> dict:
    """Test accuracy of `forward`, one text at a time as an app runs it (dynamic INT8 picks
    its scales per batch; EdgeBERT's INT8 is scored so too), written as the artifact's
    metrics.json (what bench reads)."""
    from edgebert.predict import one_at_a_time

    scores = opened.score(one_at_a_time(forward), "test", test)
    (path / "metrics.json").write_text(json.dumps(
        {"metric": opened.task.metric, "test": scores, "size_mb": size_mb(path)}, indent=2))
    return scores


def build_peers(run: Path, work: Path, target: str) -> dict[str, Path]:
    """Every peer artifact, built once (a finished one, with its metrics.json, is kept)."""
    import onnxruntime.quantization as ortq
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from edgebert.artifacts_io import copy_tokenizer, load_torch, open_artifact
    from edgebert.export.onnx import ort_forward
    from edgebert.export.torchscript import export_torchscript, torchscript_forward
    from edgebert.formats import session

    teacher = run / "teacher"
    opened = open_artifact(teacher)
    test = opened.encode("test")
    cpu = {"x86-vnni": "avx512_vnni", "x86-avx2": "avx2"}[target]
    if not (work / "optimum-int8" / "metrics.json").exists():
        sh([peer_venv(work), HERE / "peers_optimum.py", teacher, work, cpu])
        for name in ("optimum-fp32", "optimum-int8"):
            copy_tokenizer(teacher, work / name)
            onnx = next((work / name).glob("*.onnx"))  # model_quantized.onnx: bench wants
            onnx.rename(work / name / "model.onnx")      # the one name every artifact has
            score_into(work / name, ort_forward(session(work / name / "model.onnx"),
                                                opened.kind), opened, test)

    ao = work / "torch-ao-dynamic"
    if not (ao / "metrics.json").exists():
        ao.mkdir(parents=True, exist_ok=True)
        model = torch.ao.quantization.quantize_dynamic(load_torch(opened), {torch.nn.Linear},
                                                       dtype=torch.qint8)
        export_torchscript(model, opened.kind, ao / "model.pt")
        copy_tokenizer(teacher, ao)
        score_into(ao, torchscript_forward(ao / "model.pt"), opened, test)

    inc = work / "inc"
    if not (inc / "metrics.json").exists():
        # no budget: a peer is measured as it comes out (on Rotten Tomatoes INC's saved
        # program lost 1.76 dev points, past the 1-point guard EdgeBERT's own path keeps)
        sh(["edgebert", "quantize", "--model", teacher, "--engine", "inc", "--target", target,
            "--mode", "dynamic", "--max-drop", "100", "--out", inc])

    plain = work / "teacher-onnx"
    if not (plain / "metrics.json").exists():
        sh(["edgebert", "export", "--model", teacher, "--format", "onnx", "--out", plain])
    ortq_dir = work / "ort-quantize-dynamic"
    if not (ortq_dir / "metrics.json").exists():
        ortq_dir.mkdir(parents=True, exist_ok=True)
        ortq.quantize_dynamic(plain / "model.onnx", ortq_dir / "model.onnx")  # its defaults
        copy_tokenizer(teacher, ortq_dir)
        score_into(ortq_dir, ort_forward(session(ortq_dir / "model.onnx"), opened.kind),
                   opened, test)

    rec, parent = recommended(run), recommended_parent(run)
    fp32 = work / "edgebert-fp32-onnx"  # the same compressed model before INT8
    if not (fp32 / "metrics.json").exists():
        sh(["edgebert", "export", "--model", parent, "--format", "onnx", "--out", fp32])

    base = work / "bert-base-shaped"
    if not (base / "config.json").exists():
        base.mkdir(parents=True, exist_ok=True)
        copy_tokenizer(teacher, base)  # first: it copies the teacher's config.json too
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(base)
    return {"teacher-pytorch": teacher, "bert-base-shaped-pytorch": base,
            "optimum-fp32": work / "optimum-fp32", "optimum-int8": work / "optimum-int8",
            "torch-ao-dynamic": ao, "inc-dynamic": inc, "ort-quantize-dynamic": ortq_dir,
            "edgebert-fp32-onnx": fp32, "edgebert-recommended": rec,
            "edgebert-one-file": run / "export" / "ort-text"}


def recommended(run: Path) -> Path:
    report = json.loads((run / "report.json").read_text())
    return run / report["recommended"]["x86"]


def recommended_parent(run: Path) -> Path:
    """The FP32 model the recommended INT8 artifact was quantized from, inside `run`
    wherever this script runs from."""
    from edgebert.artifact import parent_in_run

    recorded = json.loads((recommended(run) / "stage.json").read_text())["parent"]
    parent = parent_in_run(run, recorded)
    if parent is None:
        raise SystemExit(f"{run}: the recommended artifact's parent {recorded} is not in the run")
    return parent


def gemm_shapes(model_dir: Path, seq: int = 128) -> list[tuple[int, int, int, int]]:
    """(batch, m, k, n) of every matrix product in one `seq`-token input, as dense GEMMs do
    them: every Linear (pooler and classifier on the [CLS] token only; batch 1) and
    attention's QK^T and AV (batch: the kept heads)."""
    import torch

    from edgebert.artifacts_io import load_torch, open_artifact

    model = load_torch(open_artifact(model_dir))
    head = model.config.hidden_size // model.config.num_attention_heads
    shapes = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            tokens = 1 if ("pooler" in name or "classifier" in name) else seq
            shapes.append((1, tokens, m.in_features, m.out_features))
            if name.endswith(".query"):  # kept heads x (seq x head x seq), then (seq x seq x head)
                heads = m.out_features // head
                shapes += [(heads, seq, head, seq), (heads, seq, seq, head)]
    return shapes


def useful_ops(shapes: list[tuple[int, int, int, int]]) -> float:
    """Multiply-adds x 2 of those products."""
    return sum(2.0 * b * m * k * n for b, m, k, n in shapes)


def time_gemm(op: str, b: int, m: int, k: int, n: int, threads: int = 2) -> float:
    """Seconds of one ONNX Runtime `op` (MatMulInteger: u8 x s8 -> s32; MatMul: FP32) at
    [b, m, k] x [b, k, n] (b = 1: a plain [m, k] x [k, n] against a constant weight)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    lead = [b] if b > 1 else []
    if op == "MatMulInteger":
        a = rng.integers(0, 255, (*lead, m, k), dtype=np.uint8)
        w = rng.integers(-127, 127, (*lead, k, n), dtype=np.int8)
        a_t, out_t = TensorProto.UINT8, TensorProto.INT32
    else:
        a = rng.standard_normal((*lead, m, k), dtype=np.float32)
        w = rng.standard_normal((*lead, k, n), dtype=np.float32)
        a_t, out_t = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])], "gemm",
        [helper.make_tensor_value_info("a", a_t, list(a.shape))],
        [helper.make_tensor_value_info("y", out_t, [*lead, m, n])],
        [numpy_helper.from_array(w, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    reps = min(1000, max(3, int(2e9 / (2 * b * m * k * n))))  # about 2 G ops a timing
    for _ in range(3):
        sess.run(None, {"a": a})
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            sess.run(None, {"a": a})
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


def gemm_rates(threads: int = 2) -> list[dict]:
    """This CPU's INT8 (MatMulInteger) and FP32 (MatMul) ops/s at a large and at BERT shapes."""
    out = []
    for m, k, n in [(2048, 2048, 2048), (128, 384, 384), (128, 384, 1536), (128, 192, 384)]:
        for op in ("MatMulInteger", "MatMul"):
            sec = time_gemm(op, 1, m, k, n, threads)
            out.append({"op": op, "m": m, "k": k, "n": n, "seconds": sec,
                        "gops": 2 * m * k * n / sec / 1e9})
            print(f"{op} {m}x{k}x{n}: {out[-1]['gops']:.0f} GOP/s", flush=True)
    return out


def gemm_floor(shapes: list[tuple[int, int, int, int]], threads: int = 2) -> dict:
    """The model's own products timed alone, each at its shape: the Linears as
    MatMulInteger (what the INT8 graph runs), attention's as FP32 MatMul (ONNX Runtime's
    QAttention multiplies QK^T and AV in FP32). Their sum is what the INT8 model would
    take if nothing but its GEMMs ran, each launched on its own: the floor this model's
    shapes set on this CPU, below the large-GEMM peak because small products cannot
    fill the machine."""
    seconds = {}
    for shape in sorted(set(shapes)):
        op = "MatMulInteger" if shape[0] == 1 else "MatMul"
        seconds[shape] = time_gemm(op, *shape, threads=threads)
    linear = sum(seconds[s] for s in shapes if s[0] == 1)
    attention = sum(seconds[s] for s in shapes if s[0] > 1)
    return {"int8_linear_ms": 1e3 * linear, "fp32_attention_ms": 1e3 * attention,
            "total_ms": 1e3 * (linear + attention),
            "shapes": [{"batch": s[0], "m": s[1], "k": s[2], "n": s[3],
                        "op": "MatMulInteger" if s[0] == 1 else "MatMul",
                        "ms": 1e3 * seconds[s], "count": shapes.count(s)}
                       for s in sorted(set(shapes))]}


def profile_ops(model: Path, runs: int = 200, threads: int = 2) -> dict:
    """ONNX Runtime's own profile of `model` at batch 1, sequence 128: microseconds per
    run and share of the kernel time, per op type (where INT8 time goes)."""
    import collections

    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    so.profile_file_prefix = str(RUNS / "peers" / "ort_profile")
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(1000, 2000, (1, 128)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
             "token_type_ids": np.zeros_like(ids)}
    feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
    for _ in range(runs):
        sess.run(None, feeds)
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    us, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            us[e["args"]["op_name"]] += e["dur"]
            count[e["args"]["op_name"]] += 1
    total = sum(us.values())
    return {"kernel_us_per_run": total / runs,
            "ops": {op: {"us_per_run": t / runs, "share": t / total, "per_run": count[op] / runs}
                    for op, t in us.most_common()}}


def texts_file(run: Path, path: Path, count: int) -> Path:
    """The first `count` test texts of the run's task, one per line."""
    from edgebert.artifacts_io import open_artifact

    examples = open_artifact(run / "teacher").task.splits["test"][:count]
    path.write_text("".join(" ".join(e.text.split()) + "\n" for e in examples))
    return path


LABELS = {
    "bert-base-shaped-pytorch": "BERT-base-shaped model, FP32 PyTorch (random weights)",
    "teacher-pytorch": "the MiniLM teacher, FP32 PyTorch",
    "torch-ao-dynamic": "torch.ao `quantize_dynamic` (Linear, qint8), TorchScript",
    "inc-dynamic": "Neural Compressor (`quantize --engine inc`), PT2E program",
    "optimum-fp32": "Optimum `ORTModelForSequenceClassification(export=True)`",
    "optimum-int8": "Optimum `ORTQuantizer`, `AutoQuantizationConfig` for this CPU",
    "ort-quantize-dynamic": "ONNX Runtime `quantize_dynamic` (defaults) on a plain export",
    "edgebert-fp32-onnx": "EdgeBERT's compressed model, FP32 ONNX (before INT8)",
    "edgebert-recommended": "EdgeBERT `compress`, recommended INT8 artifact",
    "edgebert-one-file": "EdgeBERT one-file model (tokenizer inside, strings in)",
}


def table(result: dict) -> str:
    """The README's table, from peers.json."""
    lines = ["| what a user runs | test accuracy | size | p50, 128 tokens | p50, real texts | "
             "EdgeBERT's recommended artifact is faster by (128 tokens / real texts) |",
             "|---|---|---|---|---|---|"]
    rec = result["rows"]["edgebert-recommended"]
    for name, r in result["rows"].items():
        acc = f"{100 * r['test_accuracy']:.2f} %" if r["test_accuracy"] is not None else "-"
        texts = f"{r['texts_p50_ms']:.2f} ms" if r["texts_p50_ms"] else "-"
        lines.append(f"| {LABELS.get(name, name)} | {acc} | {r['size_mb']:.1f} MB | "
                     f"{r['p50_ms']:.2f} ms | {texts} | {r['p50_ms'] / rec['p50_ms']:.1f}x"
                     + (f" / {r['texts_p50_ms'] / rec['texts_p50_ms']:.1f}x |"
                        if r["texts_p50_ms"] else " |"))
    return "\n".join(lines)


def slim(data: dict) -> dict:
    """A bench result without its flat sample lists (rounds_ms holds the same samples)."""
    return data | {"results": [{k: v for k, v in r.items() if k != "samples_ms"}
                               for r in data["results"]]}


def main() -> None:
    from edgebert.bench.machine import fingerprint
    from edgebert.bench.run import bench
    from edgebert.targets import native_target

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=RUNS / "tasks" / "rotten-tomatoes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--texts", type=int, default=100, help="test texts timed one at a time")
    ap.add_argument("--out", default="peers.json",
                    help="results file name under benchmarks/results/ (one per CPU: "
                         "peers.json is the Xeon's, peers_epyc_avx2.json the AVX2 EPYC's)")
    ap.add_argument("--table", nargs="?", type=Path, const=RESULTS / "peers.json",
                    help="print the README table of peers.json (or of this results file) "
                         "and stop")
    a = ap.parse_args()
    if a.table:
        print(table(json.loads(a.table.read_text())))
        return
    if not (a.run / "report.json").exists():
        raise SystemExit(f"{a.run}: not a finished compress run; run "
                         f"`python benchmarks/tasks.py rotten-tomatoes` first")
    work = RUNS / "peers"
    work.mkdir(parents=True, exist_ok=True)
    target = native_target()
    arts = build_peers(a.run, work, target)
    machine = fingerprint(2)
    rates = gemm_rates()
    padded = bench([str(p) for p in arts.values()], [1], [128], 2, 10, a.runs, a.rounds)
    texts = texts_file(a.run, work / "test_texts.txt", a.texts)
    on_texts = bench([str(p) for n, p in arts.items() if n != "inc-dynamic"], [1], [128], 2,
                     5, a.texts, a.rounds, texts=str(texts))
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
    teacher, opt, rec = rows["teacher-pytorch"], rows["optimum-int8"], rows["edgebert-recommended"]
    for row in rows.values():
        row["speedup_vs_teacher_pytorch"] = teacher["p50_ms"] / row["p50_ms"]
        row["speedup_vs_optimum_int8"] = opt["p50_ms"] / row["p50_ms"]
        if row["texts_p50_ms"]:
            row["texts_speedup_vs_optimum_int8"] = opt["texts_p50_ms"] / row["texts_p50_ms"]
        if row["test_accuracy"] is not None:
            row["delta_vs_teacher_points"] = 100 * (row["test_accuracy"]
                                                    - teacher["test_accuracy"])
    profile = profile_ops(recommended(a.run) / "model.onnx")
    shapes = gemm_shapes(recommended_parent(a.run))
    ops, floor = useful_ops(shapes), gemm_floor(shapes)
    int8_peak = max(g["gops"] for g in rates if g["op"] == "MatMulInteger")
    useful = ops / (rec["p50_ms"] / 1000) / 1e9
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
        "useful_ops_50pct_of_int8_gemm": useful / int8_peak >= 0.5,
    }
    optimum_log = json.loads((work / "optimum.json").read_text())
    result = {
        "machine": machine, "target": target, "run": str(a.run),
        "command": "python benchmarks/peers.py " + shlex.join(sys.argv[1:]),
        "latency": f"edgebert bench: batch 1, sequence 128, 2 threads, {a.rounds} interleaved "
                   f"rounds x {a.runs} runs, each turn a fresh process; texts: the first "
                   f"{a.texts} test texts one at a time, {a.rounds} rounds, tokenizing "
                   f"included",
        "rows": rows, "optimum": optimum_log, "gemm": rates,
        "roofline": {"useful_gop_per_128_token_input": ops / 1e9,
                     "useful_gop_s": useful, "matmulinteger_peak_gop_s": int8_peak,
                     "fraction_of_int8_gemm": useful / int8_peak,
                     "int8_over_fp32_export": int8_over_fp32,
                     # the model's GEMMs alone at their own shapes, against its p50
                     "gemm_floor": floor,
                     "gemm_floor_share_of_p50": floor["total_ms"] / rec["p50_ms"]},
        "profile_recommended": profile,
        "goals": goals,
        "bench": {"padded": slim(padded), "texts": slim(on_texts)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / a.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, r in rows.items():
        acc = f"{100 * r['test_accuracy']:.2f} %" if r["test_accuracy"] is not None else "-"
        tp = f"{r['texts_p50_ms']:.2f}" if r["texts_p50_ms"] else "-"
        print(f"{name:<26} {acc:>8} {r['size_mb']:7.1f} MB  p50 {r['p50_ms']:7.2f} ms  "
              f"texts {tp:>7} ms  x{r['speedup_vs_optimum_int8']:.2f} vs Optimum INT8")
    print(json.dumps(result["roofline"]), json.dumps(goals), sep="\n")


if __name__ == "__main__":
    main()
