"""The recommended INT8 graph of a finished run beside variants of it, on this CPU.

    python benchmarks/int8_variants.py --run RUN   # -> store rows, suite int8_variants
    (a case per variant below; the row's machine says which CPU)

RUN is a finished default `edgebert compress` run. Timed in one interleaved run (batch 1,
sequence 128, each turn a process of its own), at 2 threads and at 1:

- `shipped`: RUN's recommended x86 artifact, SkipLayerNormalization split into bias Add +
  residual Sum + LayerNormalization (edgebert.stages.quantize.onnx.split_skip_layernorm; ONNX
  Runtime folds the bias into DynamicQuantizeMatMul); an older run may have the older
  split, residual Add + bias Add + LayerNormalization;
- `skipln_fused`: the same graph with every split put back into one SkipLayerNormalization
  (what the split is measured against on this CPU);
- `residual_first` (in older rows: `bias_first`, timed against it): the residual
  first, (x + skip) + bias, both Adds, the bias left as its own Add: the older split, which
  the AVX-512 VNNI EPYC measured against the bias-first order;
- `other_x86_preset`: the same parent quantized by `edgebert quantize` with the other x86
  preset (x86-avx2 on a VNNI CPU: 7-bit weights), word table at 2 bits, RUN's budget;
- `attention_fp32` beside `all_int8_8bit_table`: the parent exported and fused again and
  quantized two ways, every node INT8, or every fused Attention left in FP32 (its QKV
  projection an FP32 GEMM, ORT's FP32 attention kernel instead of QAttention), both with
  the 8-bit word table and the same split: does QAttention pay on this CPU;
- `fp32_ort`: RUN's FP32 ORT export of the same model.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
from pathlib import Path

import numpy as np
from common import RUNS, record, run, script_command

SUITE = "int8_variants"


def splits(graph) -> list[tuple]:
    """(LayerNormalization, residual node, bias Add or None, Identity or None, x, skip, bias)
    of each split, in either layout (the bias Add before the residual or after it)."""
    by_out = {o: n for n in graph.node for o in n.output}
    by_name = {n.name: n for n in graph.node}
    found = []
    for n in graph.node:
        if n.op_type != "LayerNormalization" or not n.name.endswith("_ln"):
            continue
        base = n.name[:-3]
        bias = by_name.get(f"{base}_add_bias")
        add = by_name.get(f"{base}_add")
        if add is None or by_out[n.input[0]] not in (bias, add):
            continue  # a LayerNormalization of its own (the embeddings'), not a split
        if bias is not None and by_out[n.input[0]] is add:  # (x + bias) + skip
            x, skip, b = bias.input[0], add.input[1], bias.input[1]
        else:  # (x + skip) [+ bias]
            x, skip, b = add.input[0], add.input[1], bias.input[1] if bias else ""
        found.append((n, add, bias, by_name.get(f"{base}_sum"), x, skip, b))
    return found


def skipln_fused(src: Path, dst: Path) -> int:
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    g = model.graph
    replace, drop = {}, set()
    for ln, add, bias, ident, x, skip, b in splits(g):
        eps = next(a.f for a in ln.attribute if a.name == "epsilon")
        ins = [x, skip, ln.input[1], ln.input[2] if len(ln.input) > 2 else "", b]
        outs = [ln.output[0], "", "", ident.output[0] if ident else ""]
        while not ins[-1]:
            ins.pop()
        while not outs[-1]:
            outs.pop()
        replace[ln.name] = helper.make_node("SkipLayerNormalization", ins, outs,
                                            name=ln.name[:-3], domain="com.microsoft",
                                            epsilon=eps)
        drop |= {add.name} | ({bias.name} if bias else set()) | ({ident.name} if ident else set())
    nodes = [replace.get(n.name, n) for n in g.node if n.name not in drop]
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(model, str(dst))
    return len(replace)


def residual_first(src: Path, dst: Path) -> int:
    """Every split as (x + skip) + bias with two Adds: the older split layout."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    g = model.graph
    replace = {}
    for ln, add, bias, ident, x, skip, b in splits(g):
        if bias is None:
            continue
        total = ln.input[0]
        replace[bias.name] = []  # both nodes written where the residual was
        replace[add.name] = [helper.make_node("Add", [x, skip], [f"{total}_skip"], name=add.name),
                             helper.make_node("Add", [f"{total}_skip", b], [total],
                                              name=bias.name)]
    nodes = [m for n in g.node for m in replace.get(n.name, [n])]
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(model, str(dst))
    return sum(1 for v in replace.values() if v)


def attention_variants(parent: Path, work: Path, target: str) -> dict[str, Path]:
    """The parent quantized again as the chain does (the shipped artifact's preset,
    dynamic, split), all INT8 and with its fused Attention nodes excluded (left FP32)."""
    import onnx

    from edgebert.artifacts_io import load_torch, open_artifact
    from edgebert.onnx_export import export_onnx
    from edgebert.stages.quantize.onnx import quantize_dynamic_onnx, split_skip_layernorm
    from edgebert.stages.quantize.ort import fuse
    from edgebert.targets import target as preset

    opened = open_artifact(str(parent))
    work.mkdir(parents=True, exist_ok=True)
    export_onnx(load_torch(opened), opened.kind, work / "fp32.onnx")
    fused = fuse(opened.path, work / "fp32.onnx", work / "fused.onnx").path
    attention = [n.name for n in onnx.load(str(fused)).graph.node if n.op_type == "Attention"]
    out = {}
    for name, exclude in (("all_int8_8bit_table", []), ("attention_fp32", attention)):
        out[name] = quantize_dynamic_onnx(fused, work / f"{name}.onnx", preset(target), exclude)
        split_skip_layernorm(out[name])
    return out


def ops_as_run(path: Path) -> dict:
    """Op counts of the graph ONNX Runtime runs after its own session-start fusions."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(path.with_suffix(".as_run.onnx"))
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    counts = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    Path(so.optimized_model_filepath).unlink()
    return dict(counts.most_common())


def max_logit_diff(a: Path, b: Path) -> float:
    import onnxruntime as ort

    sa, sb = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (a, b))
    ids = np.random.default_rng(0).integers(1000, 2000, (1, 128)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
             "token_type_ids": np.zeros_like(ids)}
    feeds = {i.name: feeds[i.name] for i in sa.get_inputs()}
    return float(np.abs(sa.run(None, feeds)[0] - sb.run(None, feeds)[0]).max())


def main() -> None:
    from edgebert.artifact import parent_in_run
    from edgebert.bench.latency import interleaved

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    report = json.loads((a.run / "report.json").read_text())
    rec = a.run / report["recommended"]["x86"]
    stage = json.loads((rec / "stage.json").read_text())
    metrics = json.loads((rec / "metrics.json").read_text())
    work = RUNS / "int8_variants"
    made = {}
    for name, rewrite in (("skipln_fused", skipln_fused), ("residual_first", residual_first)):
        shutil.copytree(rec, work / name, dirs_exist_ok=True)  # config.json: the vocabulary
        made[name] = rewrite(rec / "model.onnx", work / name / "model.onnx")
    other = "x86-avx2" if stage["target"] == "x86-vnni" else "x86-vnni"
    budget = stage["config"]["max_drop"]  # what RUN's guard had, after its parent's loss
    out_other = work / other
    parent = parent_in_run(a.run, stage["parent"])  # recorded relative to where compress ran
    if parent is None:
        raise SystemExit(f"{rec}: its parent {stage['parent']} is not in {a.run}")
    if not (out_other / "metrics.json").exists():
        cmd = ["edgebert", "quantize", "--model", str(parent), "--target", other,
               "--embedding-bits", "2", "--max-drop", str(budget), "--out", str(out_other)]
        run(cmd)
    paths = {"shipped": rec / "model.onnx", "skipln_fused": work / "skipln_fused" / "model.onnx",
             "residual_first": work / "residual_first" / "model.onnx",
             f"other_x86_preset_{other}": out_other / "model.onnx",
             **attention_variants(parent, work / "attention", stage["target"]),
             "fp32_ort": a.run / "export" / "ort" / "model.ort"}
    latency = {}
    for threads in (2, 1):
        lat = interleaved({k: str(v) for k, v in paths.items()}, rounds=a.rounds, runs=a.runs,
                          warmup=20, threads=threads)
        latency[f"{threads}_threads"] = {k: {"p50_ms": v["p50_ms"], "p90_ms": v["p90_ms"]}
                                         for k, v in lat.items()}
    other_m = json.loads((out_other / "metrics.json").read_text())
    diff = {k: max_logit_diff(paths["shipped"], Path(v)) for k, v in paths.items()
            if k not in ("shipped", "fp32_ort")}
    accuracy = {"shipped": metrics["test"]["accuracy"],
                f"other_x86_preset_{other}": other_m["test"]["accuracy"]}
    cases = {}
    for name, path in paths.items():
        case = {"rewritten": made.get(name), "max_abs_logit_diff_vs_shipped": diff.get(name),
                "test_accuracy": accuracy.get(name),
                "ops_as_run": ops_as_run(Path(path)) if name != "fp32_ort" else None,
                "latency": {t: lat[name] for t, lat in latency.items()}}
        cases[name] = {k: v for k, v in case.items() if v is not None}
    print(json.dumps({k: {"test_accuracy": c.get("test_accuracy"), "latency": c["latency"]}
                      for k, c in cases.items()}, indent=1))
    record(SUITE, cases, command=script_command(__file__), notes={
        "run": str(a.run), "recommended": str(rec),
        "latency": f"edgebert bench worker: batch 1, sequence 128, {a.rounds} interleaved "
                   f"rounds x {a.runs} runs after 20 warm-up, at 2 threads and at 1"})


if __name__ == "__main__":
    main()
