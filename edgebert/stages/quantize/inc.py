"""INT8 PyTorch with Intel Neural Compressor (the `--engine inc` option of quantize).

INC's torch API quantizes a graph captured with `torch.export` (PT2E) and tunes it
against our dev metric (`autotune` with a tolerable loss): the accuracy-driven
search the issue asked to compare with our ONNX Runtime guard. On this project's
benchmark (`benchmarks/int8_inc.py`) the ORT guard won: same accuracy, INC's INT8
model slower than FP32 PyTorch on a CPU without VNNI. So ORT is the default and
this is the option, for users who deploy PyTorch rather than ONNX Runtime.

    <out>/model.pt2     a `torch.export` program, batch and sequence dynamic

The program is PT2E's reference form: FP32 weights and linear layers between
quantize/dequantize pairs (as large as FP32). INT8 kernels appear when
`torch.compile` lowers it (Inductor, x86); `edgebert bench` times it that way.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from edgebert import artifact
from edgebert.artifacts_io import calibration_batches, copy_tokenizer, load_torch
from edgebert.config import to_dict
from edgebert.errors import UserError
from edgebert.kinds import kind as task_kind
from edgebert.metrics import points
from edgebert.predict import INPUTS, torch_forward
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.quantize.scoring import finish, int8_metrics, summary
from edgebert.targets import target

MODEL_FILE = "model.pt2"


def quantize_inc(cfg: QuantizeConfig, opened, log=print) -> Path:
    """`opened` to INT8 PyTorch in `cfg.out` by Neural Compressor's accuracy-driven tuning,
    within `cfg.max_drop` dev points of the FP32 model, on the same data as the ORT path."""
    from edgebert.formats.torch import load_program, module_forward

    if target(cfg.target).arch != "x86_64" or target(cfg.target).runtime != "onnxruntime":
        raise UserError("--engine inc: its PyTorch INT8 path (PT2E, X86InductorQuantizer) "
                        "takes an x86 ONNX Runtime target (x86-avx2, x86-vnni)")
    if not (opened.path / "model.safetensors").exists():
        raise UserError(f"{cfg.model}: --engine inc quantizes a PyTorch model "
                        f"(model.safetensors); this artifact has none")
    dev = opened.encode("dev")
    metric = opened.task.metric
    with artifact.building(Path(cfg.out), "quantize", to_dict(cfg), [str(opened.path)]) as work:
        model = load_torch(opened)
        fp32_fwd = torch_forward(model)
        fp32_dev_out = opened.outputs(fp32_fwd, dev)
        fp32 = {"dev": opened.score(fp32_fwd, "dev", dev, fp32_dev_out),
                "test": opened.score(fp32_fwd, "test")}
        saved = tune_inc(model, opened.kind, cfg.mode, opened.max_length,
                         lambda fwd: points(opened.score(fwd, "dev", dev), metric),
                         points(fp32["dev"], metric), cfg.max_drop,
                         calibration_batches(opened, cfg.calibration_examples),
                         work / MODEL_FILE, log)
        fwd = module_forward(load_program(saved))  # the saved file, not the tuned module
        int8_dev_out = opened.outputs(fwd, dev)
        drop = points(fp32["dev"], metric) \
            - points(opened.score(fwd, "dev", dev, int8_dev_out), metric)
        if drop > cfg.max_drop:
            raise UserError(f"--max-drop {cfg.max_drop}: the saved INC model loses {drop:.2f} "
                            f"dev points; raise the budget or use --engine ort")
        copy_tokenizer(opened.path, work)
        sizes = {"fp32_mb": (opened.path / "model.safetensors").stat().st_size / 1e6,
                 "size_mb": (work / MODEL_FILE).stat().st_size / 1e6}
        metrics = int8_metrics(opened, fwd, dev, int8_dev_out, fp32, fp32_dev_out, drop) \
            | {"engine": "inc", "format": "pt2"} | sizes
        log(summary(metrics, f"(INC {cfg.mode})", "FP32", opened.kind)
            + f", {sizes['size_mb']:.1f} MB")
        return finish(work, cfg, opened, metrics, "pt2", engine="inc")


def tune_inc(model, kind: str, mode: str, max_length: int, metric_points, fp32: float,
             budget: float, calibration: list[dict[str, np.ndarray]], dst: Path,
             log=print) -> Path:
    """Tune `model` to INT8 within `budget` points of its `fp32` dev metric, as
    `metric_points(forward)` scores a forward; save it to `dst`.

    `calibration`: padded training batches the observers see (activations in static
    mode, weights in both); the first with two or more rows is the tracing example."""
    import torch
    from torch.export import Dim

    from edgebert.formats.torch import module_forward
    from edgebert.plain_outputs import PlainOutputs

    try:
        from neural_compressor.torch.export import export
        from neural_compressor.torch.quantization import (
            DynamicQuantConfig,
            StaticQuantConfig,
            TuningConfig,
            autotune,
        )
    except ImportError as err:
        raise UserError(f"--engine inc needs neural-compressor-pt ({err}); "
                        f"pip install 'neural-compressor-pt==3.10' py-cpuinfo") from None
    plain = PlainOutputs(model, kind, stack_qa=True).eval()
    batches = [tuple(torch.from_numpy(b[k]) for k in INPUTS) for b in calibration]
    example = next((b for b in batches if b[0].shape[0] > 1), None)
    if example is None:
        raise UserError("--engine inc: needs at least 2 training examples to trace the model")
    # batch and sequence stay dynamic: the saved program runs any padded batch
    dims = {"batch": Dim("batch", min=1, max=4096), "sequence": Dim("seq", min=2, max=max_length),
            "choices": Dim("choices", min=2, max=64)}
    axes = task_kind(kind).input_axes()
    shapes = tuple({i: dims[name] for i, name in axes.items()} for _ in INPUTS)

    def evaluate(candidate) -> float:
        return metric_points(module_forward(candidate))

    def calibrate(candidate) -> None:
        with torch.no_grad():
            for b in batches:
                candidate(*b)

    configs = [DynamicQuantConfig()] if mode == "dynamic" else [StaticQuantConfig()]
    # INC's tolerable loss is relative to the baseline; ours is in points
    tune = TuningConfig(config_set=configs, tolerable_loss=budget / max(fp32, 1e-9), max_trials=1)
    torch.manual_seed(0)
    random.seed(0)
    # run_fn in both modes: PT2E's weight observers see data only through it; without it
    # a dynamic model keeps default scales (measured: 30 % dev accuracy on the tiny test
    # model, while the model INC had scored inside autotune passed)
    tuned = autotune(export(plain, example, dynamic_shapes=shapes), tune, eval_fn=evaluate,
                     run_fn=calibrate, example_inputs=example)
    if tuned is None:
        raise UserError(f"--max-drop {budget}: Neural Compressor found no {mode} INT8 model "
                        f"within the budget; raise it, or use --engine ort")
    program = torch.export.export(tuned, example, dynamic_shapes=shapes)
    torch.export.save(program, str(dst))
    log(f"INC {mode} INT8 saved: {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return dst
