"""The artifact protocol every stage follows (`edgebert.artifact.building`): a finished
block publishes the artifact whole; a failed one leaves no half artifact and no lock, and
keeps only a training checkpoint to resume from. And every stage is found the same way."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

from edgebert import artifact
from edgebert.errors import UserError


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_finished_block_publishes_the_artifact_whole(tmp_path):
    out = tmp_path / "out"
    with artifact.building(out, "export", {"opset": 17}, [str(tmp_path / "in")]) as work:
        assert work == tmp_path / "out.partial" and artifact.lock_file(out).exists()
        (work / "model.onnx").write_bytes(b"graph")
        published = artifact.finish(work, out, {"stage": "export"}, {"dev": {}})
    assert published == out
    assert listing(tmp_path) == ["out", "out/metrics.json", "out/model.onnx", "out/stage.json"]
    assert artifact.already_done(out, lambda *_: None, "export")


def test_a_failed_block_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="drifts"):
        with artifact.building(out, "export", {}, []) as work:
            (work / "model.onnx").write_bytes(b"half a graph")
            raise UserError("the export drifts from its parent")
    assert listing(tmp_path) == []  # no out, no out.partial, no out.lock


def test_a_failed_training_stage_keeps_its_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with artifact.building(out, "finetune", {"lr": 1e-4}, []) as work:
            (work / "checkpoint").mkdir()
            (work / "checkpoint" / "state.json").write_text(json.dumps({"step": 30}))
            raise KeyboardInterrupt
    assert listing(tmp_path) == ["out.partial", "out.partial/checkpoint",
                                 "out.partial/checkpoint/state.json",
                                 "out.partial/options.json"]  # no lock: nobody holds it
    with pytest.raises(UserError, match="other options"):
        with artifact.building(out, "finetune", {"lr": 2e-4}, []):
            pass
    assert not artifact.lock_file(out).exists()  # a refused start holds nothing either
    with artifact.building(out, "finetune", {"lr": 1e-4}, []) as work:
        assert json.loads((work / "checkpoint" / "state.json").read_text()) == {"step": 30}
        artifact.finish(work, out, {"stage": "finetune"}, {})
    assert not (out / "checkpoint").exists()  # a finished artifact carries no checkpoint


def test_every_stage_runs_through_its_packages_stage_module():
    """`edgebert/<package>/stage.py: run(cfg, log)` for each stage; distillation on a corpus
    and pruning by learned masks are their packages' second stages."""
    from edgebert.stages import STAGES

    for stage in STAGES.values():
        module, name = stage.function.split(":")
        assert name == "run" and module.split(".")[-1] in ("stage", "general", "learned"), stage
        run = getattr(importlib.import_module(module), name)
        params = inspect.signature(run).parameters
        assert list(params)[:2] == ["cfg", "log"], stage
        assert ("restart" in params) == stage.resumes, stage
