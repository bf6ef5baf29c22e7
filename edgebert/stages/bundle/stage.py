"""The bundle stage (`edgebert bundle`): any model artifact -> a deployment bundle for
`edgebert.runtime`.

The bundle is checked before it is published: the runtime loads it and scores
the dev split one text at a time, and its accuracy must equal that of the
bundled model file fed the artifact's own encoding one example at a time (the
same tokenizer, truncation and model, through the code an app will run). One at
a time on both sides because dynamic INT8 picks activation scales per batch, so
padded batches of other sizes would move a few borderline predictions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgebert import artifact
from edgebert.artifacts_io import open_artifact
from edgebert.errors import UserError
from edgebert.formats import FORMATS, SERVED_FILES, model_file, open_model
from edgebert.kinds import kind
from edgebert.runtime import KINDS, SCHEMA, Model, sha256
from edgebert.stages.bundle.config import BundleConfig


def _model_file(opened, work: Path, log) -> tuple[str, str]:
    """(model file name, format) copied into `work`: the artifact's served export, else an
    FP32 ONNX export of its PyTorch weights."""
    found = model_file(opened.path, SERVED_FILES)
    if found:
        fmt = FORMATS[found[1]]
        fmt.require()
        for name in fmt.files():
            shutil.copy2(opened.path / name, work / name)
        return found[0].name, fmt.name
    if (opened.path / "model.safetensors").exists():
        from edgebert.artifacts_io import load_torch
        from edgebert.onnx_export import export_onnx

        log(f"{opened.path}: PyTorch weights; exporting FP32 ONNX into the bundle")
        export_onnx(load_torch(opened), opened.kind, work / "model.onnx")
        return "model.onnx", "onnx"
    raise UserError(f"{opened.path}: no {', '.join(SERVED_FILES)} or model.safetensors to "
                    f"bundle (TorchScript artifacts cannot be served by the runtime)")


def run(cfg: BundleConfig, log=print) -> Path:
    """Bundle the artifact `cfg.model` into `cfg.out`, checked through the runtime.

    A bundle is not a stage artifact (no stage.json or metrics.json: its manifest says what
    it holds), so it is not resumed: an existing `cfg.out` is refused, and the bundle is
    written in `<out>.partial/` and renamed when checked.

    >>> # run(BundleConfig(model="runs/default/int8/x86-avx2", out="bundles/rt"))
    """
    model = cfg.model
    opened = open_artifact(model)
    if opened.kind not in KINDS:
        raise UserError(f"{model}: the runtime serves {', '.join(KINDS)} models, not "
                        f"{opened.kind}")
    dst = Path(cfg.out)
    if dst.exists():
        raise UserError(f"--out {dst}: exists; choose a new directory")
    work = artifact.partial_dir(dst)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with artifact.discarded_on_failure(work):
        name, fmt = _model_file(opened, work, log)
        stage = opened.record
        text_in_graph = stage.get("input") == "text"  # `export --with-tokenizer`
        tok = opened.path / "tokenizer.json"
        if not text_in_graph:
            if not tok.exists():
                raise UserError(f"{model}: no tokenizer.json (a fast tokenizer is needed)")
            shutil.copy2(tok, work / "tokenizer.json")
        files = list(FORMATS[fmt].files()) + ([] if text_in_graph else ["tokenizer.json"])
        metrics = artifact.read_json(opened.path / "metrics.json")
        manifest = {"schema": SCHEMA, "kind": opened.kind, "labels": opened.task.labels,
                    "max_length": opened.max_length,
                    "pad_token_id": opened.tokenizer.pad_token_id, "model": name,
                    "format": fmt, "inference_precision": stage.get("inference_precision"),
                    "target": stage.get("target", "any"),
                    "precision": stage.get("precision", "fp32"), "source": str(opened.path),
                    "task": stage["task"]["name"], "metric": metrics.get("metric"),
                    "test": (metrics.get("test") or {}).get(metrics.get("metric")),
                    "input": "text" if text_in_graph else "ids",
                    "files": {n: sha256(work / n) for n in files}}
        artifact.write_json(work / "manifest.json", manifest)
        _check(Model(work, batch_size=1), opened, work / name, metrics, log)
        os.rename(work, dst)
    model_mb = sum((dst / n).stat().st_size for n in FORMATS[fmt].files()) / 1e6
    log(f"bundle {dst}: {', '.join(FORMATS[fmt].files())} ({model_mb:.1f} MB), "
        f"{'' if text_in_graph else 'tokenizer.json, '}manifest.json")
    return dst


def _check(runtime: Model, opened, model_file: Path, metrics: dict, log) -> None:
    """The runtime's dev accuracy must be the model file's (kinds that pick one class or
    choice per example)."""
    task = kind(opened.kind)
    dev = opened.task.splits["dev"]
    inputs = task.check_inputs(dev)
    if inputs is None:
        return
    got = runtime.predict(**inputs)
    acc = sum(task.chosen(g, runtime.labels) == ex.label for g, ex in zip(got, dev)) / len(dev)
    if runtime.text_in_graph:  # its export scored it one text at a time already
        want = metrics["dev"]["accuracy"]
    else:
        from edgebert.predict import one_at_a_time, runner_forward

        runner, _ = open_model(model_file, record=opened.record)
        forward = one_at_a_time(runner_forward(runner, opened.kind))
        want = opened.score(forward, "dev")["accuracy"]
    if abs(acc - want) > 1e-9:
        raise UserError(f"{opened.path}: through the runtime the dev accuracy is {acc:.4f}, the "
                        f"model's is {want:.4f}; tokenization or model differ, not bundling")
    log(f"runtime check: dev accuracy {acc:.4f} through edgebert.runtime equals the model's "
        f"(one text at a time)")
