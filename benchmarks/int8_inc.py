"""Intel Neural Compressor (torch PT2E) beside the ONNX Runtime guard, same student, same data.

    python benchmarks/int8_inc.py     # -> benchmarks/results/int8_inc_rt.json

Needs the 3-layer student from `python benchmarks/distill.py`, and for the ORT
side `python benchmarks/int8.py` (its dynamic x86-avx2 artifact and numbers).
INC's `autotune` searches dynamic and static INT8 with the dev accuracy as its
evaluation function and a 1-point budget (tolerable relative loss 1/FP32 dev
points), on a graph exported with `neural_compressor.torch.export` at a fixed
shape (batch 16 for accuracy; batch 1 for latency, sequence 128). Latency is
the INC INT8 model under `torch.compile` (INC's advice for speed) and eager,
against the same FP32 PyTorch model, alternated in this one process at 2
threads; each engine's speedup is over its own FP32 baseline of the same
student, measured in its own run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RUNS = Path(os.environ.get("EDGEBERT_BENCH_RUNS", "runs/bench"))
STUDENT = RUNS / "student_distilled_3l"
SEQ, EVAL_BATCH = 128, 16


def main() -> None:
    import numpy as np
    import torch
    from neural_compressor.torch.export import export
    from neural_compressor.torch.quantization import (DynamicQuantConfig, StaticQuantConfig,
                                                      TuningConfig, autotune, convert, prepare)

    from edgebert.artifacts_io import load_torch, open_artifact
    from edgebert.data.encode import pad_batch
    from edgebert.export.wrap import PlainOutputs
    from edgebert.predict import INPUTS

    torch.set_num_threads(2)
    opened = open_artifact(STUDENT)
    fp32 = PlainOutputs(load_torch(opened), opened.kind).eval()
    pad = opened.tokenizer.pad_token_id

    def fixed(features, rows):
        """Pad to (rows, SEQ): the exported graph has a fixed shape."""
        b = pad_batch(features, pad, INPUTS)
        out = []
        for name in INPUTS:
            x = np.full((rows, SEQ), pad if name == "input_ids" else 0, dtype=np.int64)
            x[:len(features), :b[name].shape[1]] = b[name][:, :SEQ]
            out.append(torch.from_numpy(x))
        return tuple(out)

    def accuracy(model, split: str) -> float:
        enc = opened.encode(split)
        labels = [ex.label for ex in opened.task.splits[split]]
        preds = []
        with torch.no_grad():
            for i in range(0, len(enc.features), EVAL_BATCH):
                feats = enc.features[i:i + EVAL_BATCH]
                logits = model(*fixed(feats, EVAL_BATCH))
                preds += logits[:len(feats)].argmax(-1).tolist()
        return sum(p == y for p, y in zip(preds, labels)) / len(labels)

    train = opened.encode("train").features
    calib = [fixed(train[i:i + EVAL_BATCH], EVAL_BATCH) for i in range(0, min(256, len(train)), EVAL_BATCH)]

    def calibrate(model):
        with torch.no_grad():
            for x in calib:
                model(*x)

    example = calib[0]
    t0 = time.perf_counter()
    fp32_dev = accuracy(fp32, "dev")
    tune = TuningConfig(config_set=[DynamicQuantConfig(), StaticQuantConfig()],
                        tolerable_loss=0.01 / fp32_dev, max_trials=2)  # 1 point, as relative
    q = autotune(export(fp32, example), tune, eval_fn=lambda m: accuracy(m, "dev"),
                 run_fn=calibrate, example_inputs=example)
    tune_seconds = time.perf_counter() - t0
    # dynamic INT8 computes activation scales at run time (choose_qparams nodes)
    chosen = ("dynamic" if any("choose_qparams" in str(n.target) for n in q.graph.nodes)
              else "static")
    result = {"fp32_dev": fp32_dev, "int8_dev": accuracy(q, "dev"),
              "fp32_test": accuracy(fp32, "test"), "int8_test": accuracy(q, "test"),
              "tune_seconds": round(tune_seconds, 1), "chosen_config": chosen}

    # latency at batch 1, sequence 128: the chosen config on a batch-1 export
    one = fixed(train[:1], 1)
    cfg = DynamicQuantConfig() if chosen == "dynamic" else StaticQuantConfig()
    q1 = prepare(export(fp32, one), cfg, example_inputs=one)
    calibrate_one = [fixed(train[i:i + 1], 1) for i in range(32)]
    with torch.no_grad():
        for x in calibrate_one:
            q1(*x)
    q1 = convert(q1)
    t0 = time.perf_counter()
    compiled = torch.compile(q1)
    with torch.no_grad():
        compiled(*one)
    compile_seconds = time.perf_counter() - t0
    models = {"fp32_pytorch": fp32, "inc_int8_eager": q1, "inc_int8_compiled": compiled}
    times = {k: [] for k in models}
    with torch.no_grad():
        for m in models.values():
            for _ in range(10):
                m(*one)
        for _ in range(8):  # alternated rounds
            for name, m in models.items():
                for _ in range(20):
                    s = time.perf_counter()
                    m(*one)
                    times[name].append(1000 * (time.perf_counter() - s))
    p50 = {k: statistics.median(v) for k, v in times.items()}
    result["latency_ms_p50"] = {k: round(v, 3) for k, v in p50.items()}
    result["speedup_over_fp32_pytorch"] = {k: round(p50["fp32_pytorch"] / v, 2)
                                           for k, v in p50.items()}
    result["compile_seconds"] = round(compile_seconds, 1)
    ort = HERE / "results" / "int8_rt.json"
    if ort.exists():
        o = json.loads(ort.read_text())
        best = o.get("best_within_1_point")
        if best:
            v = o["variants"][best]
            result["ort_best"] = {"variant": best, "test_accuracy": v["test_accuracy"],
                                  "delta_vs_fp32": v["delta_vs_fp32"],
                                  "speedup_over_fp32_onnx": v["speedup"],
                                  "size_mb": v["size_mb"]}
    result["command"] = "python benchmarks/int8_inc.py"
    (HERE / "results" / "int8_inc_rt.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
