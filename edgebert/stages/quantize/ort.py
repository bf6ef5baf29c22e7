"""The ONNX Runtime path of the quantize stage (the default engine):

    FP32 ONNX (exported and checked, or the artifact's own)
      -> ORT's transformer fusions, checked against the unfused graph
      -> INT8 (dynamic, or static QDQ on calibration batches) under the accuracy guard
      -> SkipLayerNormalization split, low-bit word table (embeddings/), position table cut
      -> aarch64 parity under emulation for an arm64 target
      -> scored on dev and test against the fused FP32 graph
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import calibration_batches, copy_tokenizer
from edgebert.config import to_dict
from edgebert.errors import UserError
from edgebert.families import family_of
from edgebert.formats import require_model_file, session
from edgebert.guard import guard, sampled_damage
from edgebert.metrics import points
from edgebert.parity import compare, require
from edgebert.predict import ort_forward, scored_as_run
from edgebert.stages.quantize.arm64 import arm64_check
from edgebert.stages.quantize.config import QuantizeConfig
from edgebert.stages.quantize.onnx import (
    optimize,
    quantizable_nodes,
    quantize_dynamic_onnx,
    quantize_static_onnx,
    split_skip_layernorm,
)
from edgebert.stages.quantize.positions import longest_input, trim_positions
from edgebert.stages.quantize.scoring import finish, int8_metrics, summary
from edgebert.stages.quantize.source import fp32_onnx
from edgebert.targets import same_int8_graph, target


def int8_forward(path: Path, kind: str, mode: str):
    """The INT8 graph at `path`, scored as it runs (predict.scored_as_run): a dynamic one
    one text at a time; static scales are fixed, so its padded batches are kept (faster)."""
    return scored_as_run(ort_forward(session(path), kind), mode == "dynamic")


def fuse(model_dir: Path, fp32: Path, dst: Path):
    """ORT's BERT fusions on `fp32`, the ONNX export of the model in `model_dir`, with the
    shape and family (activation, shared layers) read from its config."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(str(model_dir))  # any family's names for these
    act = getattr(c, "hidden_act", getattr(c, "activation", "gelu"))
    return optimize(fp32, dst, c.num_attention_heads, c.hidden_size, c.num_hidden_layers,
                    gelu="gelu" in str(act), shared=family_of(c).shared_layers)


def quantize_ort(cfg: QuantizeConfig, opened, log=print) -> Path:
    """`opened` to an INT8 ONNX Runtime graph for `cfg.target` in `cfg.out`, within
    `cfg.max_drop` dev points of its fused FP32 graph."""
    from edgebert.stages.quantize.embeddings.ladder import lowbit_table

    p = target(cfg.target)
    require_model_file(opened.path, ("model.safetensors", "model.onnx"), "to quantize")
    if cfg.same_graph_as:
        return _from_twin(cfg, opened, log)
    dev = opened.encode("dev")
    metric = opened.task.metric
    with artifact.building(Path(cfg.out), "quantize", to_dict(cfg), [str(opened.path)]) as work:
        scratch = work / "scratch"
        scratch.mkdir(exist_ok=True)
        fp32 = scratch / "fp32.onnx"
        model, _ = fp32_onnx(opened, fp32, dev, cfg.model)
        fused, counts = fp32, {}
        if cfg.fuse:
            f = fuse(opened.path, fp32, scratch / "fused.onnx")
            fused, counts = f.path, f.counts
            log("fused: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            require(compare(opened.outputs(ort_forward(session(fp32), opened.kind), dev),
                            opened.outputs(ort_forward(session(fused), opened.kind), dev),
                            opened.kind), "fused FP32 graph", 1e-3, 0.999)
        fp32_fwd = ort_forward(session(fused), opened.kind)
        fp32_dev_out = opened.outputs(fp32_fwd, dev)
        fp32_dev = opened.score(fp32_fwd, "dev", dev, fp32_dev_out)
        fp32_points = points(fp32_dev, metric)

        def drop_of(path: Path) -> float:
            fwd = int8_forward(path, opened.kind, cfg.mode)
            return fp32_points - points(opened.score(fwd, "dev", dev), metric)

        result = _guarded_int8(cfg, opened, fused, dev, fp32_dev_out, fp32_points, scratch, log)
        final = work / "model.onnx"
        shutil.move(result.path, final)
        split = split_skip_layernorm(final)  # same numbers, faster kernels (see its docstring)
        drop, lowbit = result.drop, None
        if cfg.embedding_bits < 8:
            drop, lowbit = lowbit_table(final, scratch, cfg, opened, model, drop_of, drop, log)
        positions = _cut_positions(final, opened, log)
        sizes = {"fp32_onnx_mb": fp32.stat().st_size / 1e6, "size_mb": final.stat().st_size / 1e6}
        arm = arm64_check(final, fused, opened, log) if p.arch == "aarch64" else None
        fwd = int8_forward(final, opened.kind, cfg.mode)
        metrics = int8_metrics(opened, fwd, dev, opened.outputs(fwd, dev),
                               {"dev": fp32_dev, "test": opened.score(fp32_fwd, "test")},
                               fp32_dev_out, drop) | {
            "fused_nodes": counts, "skip_layernorm_split": split,
            "excluded_nodes": result.excluded, "guard_tries": result.tries,
            "embedding_lowbit": lowbit, "positions": positions, "format": "onnx",
            "arm64_emulation": arm} | sizes
        shutil.rmtree(scratch)
        copy_tokenizer(opened.path, work)
        log(summary(metrics, f"{cfg.target} {cfg.mode}", "FP32", opened.kind)
            + f", {sizes['size_mb']:.1f} MB ({sizes['fp32_onnx_mb'] / sizes['size_mb']:.1f}x "
              f"smaller)")
        return finish(work, cfg, opened, metrics, "onnx", preset=p.record())


TARGET_OWN = ("target", "out", "same_graph_as")
"""The options in which two INT8 artifacts of one graph differ."""


def twin_mismatch(cfg: QuantizeConfig, twin: Path) -> str | None:
    """Why the INT8 artifact `twin` cannot stand in for quantizing `cfg` (None: it can)."""
    if not artifact.is_complete(twin):
        return "not a finished artifact"
    stage = artifact.read_json(twin / "stage.json")
    theirs, ours = stage.get("config") or {}, to_dict(cfg)
    if stage.get("stage") != "quantize" or stage.get("format") != "onnx":
        return "not an ONNX Runtime INT8 artifact"
    differ = [k for k in ours if k not in TARGET_OWN and theirs.get(k) != ours[k]]
    if differ:
        return "made with other " + ", ".join(f"--{k.replace('_', '-')}" for k in differ)
    if not same_int8_graph(theirs["target"], cfg.target, cfg.mode):
        return (f"ONNX Runtime quantizes {theirs['target']} and {cfg.target} to different "
                f"graphs in {cfg.mode} mode")
    return None


def _from_twin(cfg: QuantizeConfig, opened, log) -> Path:
    """The graph of `cfg.same_graph_as` for `cfg.target`, with its scores (the same graph
    scores the same on x86), checked the way this target is (arm64: under emulation)."""
    twin = Path(cfg.same_graph_as)
    why = twin_mismatch(cfg, twin)
    if why:
        raise UserError(f"--same-graph-as {twin}: {why}")
    p = target(cfg.target)
    inputs = [str(opened.path), str(twin)]
    with artifact.building(Path(cfg.out), "quantize", to_dict(cfg), inputs) as work:
        final = work / "model.onnx"
        shutil.copy2(twin / "model.onnx", final)
        arm = None
        if p.arch == "aarch64":  # the check compares with the fused FP32 graph
            scratch = work / "scratch"
            scratch.mkdir(exist_ok=True)
            fp32 = scratch / "fp32.onnx"
            fp32_onnx(opened, fp32, opened.encode("dev"), cfg.model)
            fused = fuse(opened.path, fp32, scratch / "fused.onnx").path if cfg.fuse else fp32
            arm = arm64_check(final, fused, opened, log)
            shutil.rmtree(scratch)
        copy_tokenizer(opened.path, work)
        log(f"INT8 {cfg.target}: the graph of {twin} (ONNX Runtime's {cfg.mode} INT8 is the same "
            f"for both targets), its scores kept")
        metrics = artifact.read_json(twin / "metrics.json") | {"arm64_emulation": arm,
                                                               "same_graph_as": str(twin)}
        return finish(work, cfg, opened, metrics, "onnx", preset=p.record())


def _guarded_int8(cfg: QuantizeConfig, opened, fused: Path, dev, fp32_dev_out, fp32_points,
                  scratch: Path, log):
    """The guard's INT8 graph of `fused` (guard.guard): every quantizable node in INT8, or
    with those whose INT8 output moves most kept in FP32 until the model is within
    `cfg.max_drop` dev points; a UserError where even that is not enough."""
    p = target(cfg.target)
    batches = calibration_batches(opened, cfg.calibration_examples) \
        if cfg.mode == "static" else []
    candidates = quantizable_nodes(fused)  # read the graph once, not once per probe

    def run_quantizer(dst: Path, exclude, only) -> Path:
        if only is not None:  # quantize just these nodes: exclude all the others
            exclude = [n for n in candidates if n not in only]
        if cfg.mode == "dynamic":
            return quantize_dynamic_onnx(fused, dst, p, exclude)
        return quantize_static_onnx(fused, dst, p, batches, cfg.calibration, exclude)

    damage = sampled_damage(opened, dev, fp32_dev_out,
                            lambda path: int8_forward(path, opened.kind, cfg.mode))
    result = guard(run_quantizer,
                   lambda path: points(opened.score(int8_forward(path, opened.kind, cfg.mode),
                                                    "dev", dev), opened.task.metric),
                   damage, fp32_points, candidates, cfg.max_drop, scratch, log)
    if not result.within_budget:
        raise UserError(f"--max-drop {cfg.max_drop}: even with {len(result.excluded)} nodes "
                        f"in FP32 the INT8 model loses {result.drop:.2f} dev points; raise "
                        f"the budget or try --mode dynamic / another --calibration")
    return result


def _cut_positions(final: Path, opened, log) -> dict | None:
    """The position table of `final` cut to the artifact's max_length (positions.py)."""
    vocab = artifact.read_json(opened.path / "config.json")["vocab_size"]
    positions = trim_positions(final, opened.max_length,
                               longest_input(opened.kind, opened.max_length, vocab))
    if positions and positions["kept"]:
        log(f"position table: {max(positions['rows_before'].values())} -> "
            f"{positions['rows_after']} rows, {positions['mb_saved']:.2f} MB smaller "
            f"(inputs up to {positions['max_tokens']} tokens, the artifact's max_length)")
    elif positions:
        log(f"position table: {max(positions['rows_before'].values())} rows kept "
            f"({positions['reason']})")
    return positions
