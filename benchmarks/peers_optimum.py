"""Optimum's documented recipe for a fine-tuned BERT classifier, run in its own venv.

    <peers venv>/bin/python benchmarks/peers_optimum.py TEACHER OUT CPU

Run by benchmarks/peers.py inside the venv it makes (optimum-onnx needs
transformers < 4.58; nothing of Optimum's is an edgebert dependency). Imports nothing
from edgebert. Writes, following https://huggingface.co/docs/optimum-onnx:

    OUT/optimum-fp32/   ORTModelForSequenceClassification.from_pretrained(export=True)
    OUT/optimum-int8/   ORTOptimizer (AutoOptimizationConfig.O2) then ORTQuantizer with
                        AutoQuantizationConfig.<CPU>(is_static=False); where the optimizer
                        fails, the plain export is quantized and the failure recorded
    OUT/optimum.json    versions, the configs used, what failed and why

CPU is avx512_vnni, avx512 or avx2: the AutoQuantizationConfig constructor for the machine.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from importlib import metadata
from pathlib import Path


def main(teacher: str, out: str, cpu: str) -> None:
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    out = Path(out)
    fp32, optimized, int8 = out / "optimum-fp32", out / "optimum-o2", out / "optimum-int8"
    for d in (fp32, optimized, int8):
        shutil.rmtree(d, ignore_errors=True)
    log = {"versions": {p: metadata.version(p) for p in
                        ("optimum", "optimum-onnx", "onnxruntime", "transformers", "torch")},
           "cpu_config": f"AutoQuantizationConfig.{cpu}(is_static=False)"}
    model = ORTModelForSequenceClassification.from_pretrained(teacher, export=True)
    model.save_pretrained(fp32)
    source = fp32
    try:
        ORTOptimizer.from_pretrained(model).optimize(
            save_dir=optimized, optimization_config=AutoOptimizationConfig.O2())
        source = optimized
        log["optimizer"] = "O2"
    except Exception as err:  # the documented path failing is a result, not a crash
        log["optimizer"] = None
        log["optimizer_failed"] = f"{type(err).__name__}: {str(err)[:400]}"
        log["optimizer_traceback_tail"] = traceback.format_exc().splitlines()[-3:]
    qconfig = getattr(AutoQuantizationConfig, cpu)(is_static=False)
    try:
        ORTQuantizer.from_pretrained(source).quantize(save_dir=int8, quantization_config=qconfig)
    except Exception as err:
        if source == fp32:
            raise
        log["quantize_o2_failed"] = f"{type(err).__name__}: {str(err)[:400]}"
        shutil.rmtree(int8, ignore_errors=True)
        source = fp32  # the fallback: quantize the plain export
        ORTQuantizer.from_pretrained(source).quantize(save_dir=int8, quantization_config=qconfig)
    log["quantized_from"] = source.name
    log["quantization_config"] = {k: str(v) for k, v in vars(qconfig).items()}
    (out / "optimum.json").write_text(json.dumps(log, indent=2) + "\n")
    print(json.dumps({k: log.get(k) for k in ("optimizer", "optimizer_failed",
                                              "quantize_o2_failed", "quantized_from")}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
