"""ExecuTorch: a model as a `.pte` program delegated to XNNPACK, in FP32 or INT8; the
writer of `--format executorch`.

    torch.export (batch and tokens dynamic, bounded) -> [PT2E: prepare, calibrate, convert]
    -> to_edge_transform_and_lower(XnnpackPartitioner) -> to_executorch -> model.pte

INT8 is PT2E static quantization with the XNNPACK quantizer: symmetric INT8 activations
with ranges from training texts (histogram observers), per-channel INT8 weights, and the
word table packed for ExecuTorch's quantized kernels (pte_table). Its reference form (the
converted module, quantize/dequantize around float ops) is what the accuracy guard
scores; the lowered program, as ExecuTorch runs it, is then held to the same budget, and
its parity with the reference is recorded.

XNNPACK takes the linear layers, matmuls, softmax, GELU and adds; what it does not take
(embedding lookups, the attention-mask arithmetic, and in executorch 1.5.1 LayerNorm)
runs in ExecuTorch's portable CPU kernels, and `outside_delegate` lists it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebert.data.features import INPUTS
from edgebert.errors import UserError
from edgebert.kinds import kind as task_kind
from edgebert.stages.export.job import Job, Reference, Written

MAX_BATCH = 8
"""The largest batch a program takes in one call (its buffers are planned for it): an app
sends one text; scoring sends batches, which the runner slices. Planned memory grows with
it (batch x tokens x FFN width x 4 bytes for the widest activation)."""
CALIBRATION_EXAMPLES = 256
"""Training texts an ExecuTorch INT8 export calibrates its activation ranges on (quantize's
default --calibration-examples)."""


def _args(batch: dict[str, np.ndarray]):
    import torch

    return tuple(torch.from_numpy(batch[k]) for k in INPUTS)


def capture(model, kind: str, max_length: int):
    """`torch.export` of the model behind PlainOutputs (see `trace`)."""
    from edgebert.plain_outputs import PlainOutputs

    return trace(PlainOutputs(model, kind).eval(), kind, max_length)


def trace(module, kind: str, max_length: int):
    """`torch.export` of a module that takes the three int64 inputs: batch up to MAX_BATCH
    and tokens up to `max_length` (choices free for multiple choice)."""
    import torch
    from torch.export import Dim

    dims = {"batch": Dim("batch", min=1, max=MAX_BATCH),
            "sequence": Dim("seq", min=2, max=max_length),
            "choices": Dim("choices", min=2, max=64)}
    shapes = tuple({i: dims[name] for i, name in task_kind(kind).input_axes().items()}
                   for _ in INPUTS)
    # traced at 2 examples of 16 tokens: a size of 1 would be specialized, not dynamic
    ids = torch.full(task_kind(kind).input_shape(2, min(16, max_length)), 5, dtype=torch.long)
    with torch.no_grad():
        return torch.export.export(module, (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                                   dynamic_shapes=shapes)


def linear_layers(model, kind: str) -> list[str]:
    """Names (as PT2E sees them, under PlainOutputs) of the linear layers: what INT8 takes
    and what the guard may keep in FP32."""
    import torch

    from edgebert.plain_outputs import PlainOutputs

    return [name for name, m in PlainOutputs(model, kind).named_modules()
            if isinstance(m, torch.nn.Linear)]


def quantize_pt2e(program, calibration: list[dict[str, np.ndarray]],
                  fp32_layers: list[str] | None = None, only: list[str] | None = None):
    """The INT8 reference module of an exported `program` (see `capture`): static,
    per-channel, observers run on `calibration` batches. `fp32_layers`: linear layers left
    in float; `only`: quantize just these (the guard's probes)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import get_module_name_filter

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(
        is_per_channel=True))
    skip = [get_module_name_filter(n) for n in fp32_layers or []]
    keep = [get_module_name_filter(n) for n in only or []]
    if skip or keep:
        quantizer.set_filter_function(
            lambda node: not any(f(node) for f in skip) and (not keep or any(
                f(node) for f in keep)))
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(*_args(batch))
    return convert_pt2e(prepared)


def lower(program, path: Path) -> list[str]:
    """Write `program` (an ExportedProgram) as an XNNPACK-delegated .pte at `path`; the
    operators left outside the delegate (run by ExecuTorch's portable kernels), sorted."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    outside = sorted({_op_name(n.target) for n in edge.exported_program().graph.nodes
                      if n.op == "call_function" and _op_name(n.target) not in PLUMBING})
    path.write_bytes(edge.to_executorch().buffer)
    return outside


PLUMBING = {"executorch_call_delegate", "getitem", "sym_size", "mul", "scalar_tensor"}
"""Graph nodes that are no operator work: the delegate call, tuple reads, and arithmetic
on shapes (ints)."""


def _op_name(target) -> str:
    """`aten.native_layer_norm.default` -> native_layer_norm; a Python builtin by name."""
    name = getattr(target, "__name__", str(target))
    name = str(getattr(target, "_name", None) or name)
    return name.split("::")[-1].split(".")[0]


def reference_forward(module):
    """A forward over a captured or converted module (numpy batch in, numpy out)."""
    import torch

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            out = module(*_args(batch))
        out = torch.stack(out, 1) if isinstance(out, tuple) else out  # QA: [B, 2, L]
        return out.float().numpy()

    return run


def write_executorch(job: Job) -> Written:
    """model.pte from the parent's PyTorch weights, in cfg.precision, run in ExecuTorch's
    runtime. FP32 must match the parent; INT8 is kept within cfg.max_drop dev points of the
    parent by the guard (on its PT2E reference), with the word table at the fewest bits
    that keep it there, and the program as XNNPACK runs it must be within them too (its
    parity with the reference is recorded)."""
    from edgebert.artifacts_io import calibration_items
    from edgebert.formats.executorch import open_executorch
    from edgebert.guard import guard, sampled_damage
    from edgebert.metrics import points, reference
    from edgebert.predict import runner_forward
    from edgebert.stages.export.pte_table import cut_positions

    cfg, opened, dev, parent_dev, target = job.cfg, job.opened, job.dev, job.parent_dev, \
        job.target
    model = cut_positions(job.torch_model("ExecuTorch needs PyTorch weights "
                                          "(model.safetensors); export from the FP32 model"),
                          opened.max_length)
    program = capture(model, opened.kind, opened.max_length)
    record: dict = {"max_batch": MAX_BATCH, "max_tokens": opened.max_length}
    checked = None
    if cfg.precision == "int8":
        metric = opened.task.metric
        items = calibration_items(opened, CALIBRATION_EXAMPLES)
        made: dict[Path, object] = {}  # the guard names its tries by path; they stay in memory

        def quantize(dst: Path, exclude, only) -> Path:
            made[dst] = quantize_pt2e(program, items, exclude, only)
            return dst

        def dev_points(forward) -> float:
            return points(opened.score(forward, "dev", dev), metric)

        damage = sampled_damage(opened, dev, parent_dev, lambda path: reference_forward(made[path]))
        parent_scores = opened.score(None, "dev", dev, parent_dev)
        parent_points = points(parent_scores, metric)
        result = guard(quantize, lambda path: dev_points(reference_forward(made[path])), damage,
                       parent_points, linear_layers(model, opened.kind), cfg.max_drop,
                       target.parent, job.log)
        if not result.within_budget:
            raise UserError(f"--max-drop {cfg.max_drop}: even with {len(result.excluded)} "
                            f"linear layers in FP32 the ExecuTorch INT8 model loses "
                            f"{result.drop:.2f} dev points; raise the budget")
        int8, drop, table = word_table(model, opened, made[result.path], result, items,
                                       lambda m: parent_points - dev_points(reference_forward(m)),
                                       cfg, job.log)
        # recorded, not refused: XNNPACK requantizes with its own rounding, and on a real
        # model that is more than a step (Rotten Tomatoes' pruned student: max |delta|
        # 0.21, 98.6 % top-1 against its reference); the program itself is held to the
        # budget below
        checked = Reference(opened.outputs(reference_forward(int8), dev),
                            "executorch int8 export (against its PT2E reference)")
        program = trace(int8, opened.kind, opened.max_length)
        record |= {"fp32_layers": result.excluded, "guard_tries": result.tries,
                   "calibration_examples": len(items), "fp32_dev": reference(parent_scores),
                   "reference_delta_vs_fp32_dev": -drop, "word_table": table}
    record["outside_delegate"] = lower(program, target)
    job.log(f"executorch {cfg.precision}: outside the XNNPACK delegate: "
            f"{', '.join(record['outside_delegate']) or 'nothing'}")
    runner = open_executorch(target, record={"task": opened.record["task"]})
    forward = runner_forward(runner, opened.kind)
    if checked:  # the program, as it runs, within the budget the guard kept its reference in
        lost = parent_points - dev_points(forward)
        job.log(f"executorch int8: the XNNPACK program is {lost:.2f} dev points under the "
                f"parent (its PT2E reference {drop:.2f})")
        if lost > cfg.max_drop:
            raise UserError(f"--max-drop {cfg.max_drop}: the ExecuTorch INT8 program loses "
                            f"{lost:.2f} dev points as XNNPACK runs it (its PT2E reference "
                            f"{drop:.2f}); raise the budget or export FP32")
        record["delta_vs_fp32_dev"] = -lost
    record["arm64_emulation"] = arm64_check(target, opened, runner, model, job.log)
    return Written(forward, record, checked)


def word_table(model, opened, int8, result, items, drop_of, cfg, log) -> tuple:
    """The INT8 reference module with the word table at the fewest bits of
    --embedding-bits' ladder that keeps it within --max-drop dev points of the parent, else
    `int8` as the guard left it (FP32 table): (module, its dev drop, what was tried). Each
    try is the guard's program again, from the model with the table swapped in, on the
    same calibration and with the same layers in FP32."""
    from edgebert.stages.export.pte_table import LADDERS, group_of, table_mb, with_table

    tries = []
    width = model.get_input_embeddings().weight.shape[1]
    for bits in LADDERS[cfg.embedding_bits]:
        if group_of(width, bits) is None:
            log(f"executorch int8: a {width}-wide word table does not pack at {bits} bits")
            tries.append({"bits": bits, "kept": False, "reason": "does not pack"})
            continue
        trial = quantize_pt2e(capture(with_table(model, bits), opened.kind, opened.max_length),
                              items, result.excluded)
        drop = drop_of(trial)
        kept = drop <= cfg.max_drop
        log(f"executorch int8: {bits}-bit word table, {table_mb(model, None):.2f} -> "
            f"{table_mb(model, bits):.2f} MB, dev drop {drop:.2f} points vs the parent "
            f"(budget {cfg.max_drop:g}): " + ("kept" if kept else "over the budget"))
        tries.append({"bits": bits, "mb": table_mb(model, bits), "dev_drop": drop, "kept": kept})
        if kept:
            return trial, drop, {"bits": bits, "tries": tries}
    return int8, result.drop, {"bits": 32, "tries": tries}


def arm64_check(pte: Path, opened, runner, model, log) -> dict:
    """The program under emulated aarch64 ExecuTorch (its C++ runtime) beside `runner`, the
    same program on this CPU, on the dev examples the ONNX Runtime arm64 check takes, where
    the emulator runs here; drift from the PyTorch `model` it was made from is refused as
    for ONNX Runtime (`edgebert.targets.check.refuse_drift`). Else why it was not run."""
    from edgebert.targets.arm64 import pte_unavailable

    why = pte_unavailable()
    if why:
        log(f"executorch: not checked under arm64 emulation ({why})")
        return {"checked": False, "reason": why}
    import torch

    from edgebert.plain_outputs import PlainOutputs
    from edgebert.targets.check import pte_arm64_parity, refuse_drift

    parent = PlainOutputs(model, opened.kind).eval()

    def fp32(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            out = parent(*_args(feeds))
        return [o.float().numpy() for o in (out if isinstance(out, tuple) else (out,))]

    res = pte_arm64_parity(pte, opened, runner, fp32=fp32)
    refuse_drift(res, "executorch program")
    log(f"executorch: emulated aarch64 vs x86 on {res['examples']} dev examples: max |delta| "
        f"{res['max_abs_diff']:.2e}, top-1 {res['top1_agreement']:.2%} of {res['predictions']} "
        f"predictions; top-1 vs the PyTorch parent aarch64 {res['arm64_top1_vs_fp32']:.2%}, "
        f"x86 {res['x86_top1_vs_fp32']:.2%}")
    return {"checked": True} | res
