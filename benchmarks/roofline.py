"""This CPU's GEMM rates, and a model's useful operations measured against them.

Used by benchmarks/peers.py: a model's matrix products at one input length, counted from
its Linear layers and attention; the rate of one large and a few BERT-shaped GEMMs in each
precision an artifact runs in (ONNX Runtime MatMulInteger for INT8, MatMul for FP32,
OpenVINO MatMul compiled for bf16); the model's own products timed alone (its GEMM floor);
and ONNX Runtime's profile of where an INT8 graph's time goes.

    >>> rates = gemm_rates(threads=2)
    >>> peak_gops(rates, "bf16")  # the bf16 rate, None where this CPU computes no bf16
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

SHAPES = [(2048, 2048, 2048), (128, 384, 384), (128, 384, 1536), (128, 192, 384)]
"""(m, k, n) of the rates: one large GEMM (the peak), then BERT-sized products at 128
tokens (attention projections, FFN, a narrow student's)."""
RATE_OPS = {"int8": "MatMulInteger", "f32": "MatMul", "bf16": "MatMul bf16 (OpenVINO)"}
"""The GEMM each artifact precision is measured against."""


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


def median_seconds(call, ops: float) -> float:
    """Median seconds of one `call` over 7 timings of about 2 G operations each (`ops`: the
    operations of one call), after 3 warm-up calls."""
    reps = min(1000, max(3, int(2e9 / ops)))
    for _ in range(3):
        call()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


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
    return median_seconds(lambda: sess.run(None, {"a": a}), 2 * b * m * k * n)


def time_gemm_bf16(b: int, m: int, k: int, n: int, threads: int = 2) -> tuple[float, str]:
    """Seconds of one OpenVINO MatMul at [b, m, k] x [b, k, n] (FP32 in and out, a constant
    weight) compiled as an OpenVINO bf16 artifact is (INFERENCE_PRECISION_HINT bf16,
    `threads` threads, LATENCY), and the precision OpenVINO says it computes in: "bf16"
    where the CPU has AMX-BF16 or AVX512-BF16 (elsewhere it falls back, and says so)."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    lead = [b] if b > 1 else []
    a = rng.standard_normal((*lead, m, k), dtype=np.float32)
    param = ops.parameter(list(a.shape), ov.Type.f32, name="a")
    w = ops.constant(rng.standard_normal((*lead, k, n), dtype=np.float32))
    model = ov.Model([ops.matmul(param, w, False, False)], [param], "gemm")
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    seconds = median_seconds(lambda: request.infer({0: a}), 2 * b * m * k * n)
    return seconds, compiled.get_property("INFERENCE_PRECISION_HINT").to_string()


def gemm_rates(threads: int = 2, shapes=SHAPES) -> list[dict]:
    """This CPU's ops/s in every precision of RATE_OPS, at `shapes` ((m, k, n) each)."""
    out = []
    for m, k, n in shapes:
        for precision, op in RATE_OPS.items():
            computed = precision
            if precision == "bf16":
                sec, computed = time_gemm_bf16(1, m, k, n, threads)
            else:
                sec = time_gemm(op, 1, m, k, n, threads)
            out.append({"op": op, "precision": precision, "computed_in": computed,
                        "m": m, "k": k, "n": n, "seconds": sec,
                        "gops": 2 * m * k * n / sec / 1e9})
            print(f"{op} {m}x{k}x{n}: {out[-1]['gops']:.0f} GOP/s", flush=True)
    return out


def peak_gops(rates: list[dict], precision: str) -> float | None:
    """The best rate measured for `precision` (int8, f32, bf16); None where none was, or
    where OpenVINO computed a bf16 request in another precision (no bf16 on this CPU)."""
    got = [r["gops"] for r in rates
           if r["precision"] == precision and r.get("computed_in", precision) == precision]
    return max(got) if got else None


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


def profile_ops(model: Path, prefix: Path, runs: int = 200, threads: int = 2) -> dict:
    """ONNX Runtime's own profile of `model` at batch 1, sequence 128 (its trace written at
    `prefix`, read and removed): microseconds per run and share of the kernel time, per op
    type (where INT8 time goes)."""
    import collections

    import numpy as np
    import onnxruntime as ort

    from edgebert.bench.worker import _id_range  # the ids bench times: inside a trimmed vocab

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    so.profile_file_prefix = str(prefix)
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(*_id_range(str(model)), (1, 128)).astype(np.int64)
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
