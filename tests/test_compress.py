"""`edgebert compress` on the tiny recipe with a tiny teacher: the whole chain, the
report and recommendation, and SIGKILL at several points followed by resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def compress_cmd(teacher: Path, out: Path, *sets: str) -> list[str]:
    """The tiny recipe with the test's fine-tuned tiny teacher (copied, not retrained)."""
    base = [f"teacher.model={teacher}", "teacher.finetuned=true", "task.limit=null",
            "quantize=[{target: native, max_drop: 100, embedding_bits: 2}]", "bench.enabled=false"]
    cmd = [sys.executable, "-m", "edgebert.cli", "compress", "tiny", "--out", str(out)]
    for s in base + list(sets):
        cmd += ["--set", s]
    return cmd


def env() -> dict:
    return os.environ | {"EDGEBERT_QUIET": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def reference(tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compress") / "run"
    res = subprocess.run(compress_cmd(tiny_teacher, out), env=env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "report:" in res.stdout and "[7/7]" in res.stdout
    (out.parent / "stdout.txt").write_text(res.stdout)
    return out


def rows(run: Path) -> dict[str, dict]:
    return {r["artifact"]: r for r in json.loads((run / "report.json").read_text())["rows"]}


def test_compress_writes_every_artifact_and_the_report(reference):
    expected = {"teacher", "student", "pruned", "pruned_trimmed", "int8/x86-avx2",
                "export/torchscript", "export/openvino"}
    native = json.loads((reference / "int8" / "x86-avx2" / "stage.json").read_text()) \
        if (reference / "int8" / "x86-avx2").exists() else None
    got = rows(reference)
    if native is None:  # another CPU: the native preset names the directory
        expected = {e for e in expected if not e.startswith("int8/")}
        assert any(a.startswith("int8/") for a in got)
    assert expected <= set(got)
    assert (reference / "recipe.yaml").read_text().count("finetuned: true") == 1
    for name in ("report.json", "report.md", "report.html"):
        assert (reference / name).stat().st_size > 0
    # the pruned model really is smaller, the trimmed one smaller still
    assert got["pruned"]["params"] < got["student"]["params"] < got["teacher"]["params"]
    assert got["pruned_trimmed"]["params"] < got["pruned"]["params"]
    assert all(r["accuracy"] is not None for r in got.values())
    # every artifact, whatever its format, recorded its test outcomes: each Δ has its SE,
    # zero exactly where it is right on the same test examples as the teacher, and positive
    # where the two differ on one (a paired bootstrap then sees the difference move)
    def right(name):
        o = json.loads((reference / name / "metrics.json").read_text())["test"]["outcomes"]
        return [p == t for p, t in zip(o["pred"], o["true"])]

    assert {r["metric"] for r in got.values()} == {"accuracy"}
    for name, r in got.items():
        if name != "teacher":
            differ = right(name) != right("teacher")
            assert (r["delta_se"] > 0) if differ else (r["delta_se"] == 0.0), (name, r)
    # ...once, in the model's own metrics.json: a parent's scores copied beside are without
    student = json.loads((reference / "student" / "metrics.json").read_text())
    assert "outcomes" in student["test"] and "outcomes" not in student["teacher"]["test"]
    report = json.loads((reference / "report.json").read_text())
    assert report["teacher"] == "teacher" and report["budget_points"] == 100.0
    # the native INT8 holds its word table at 2 bits (the budget allows anything)
    native_dir = next((reference / "int8").glob("x86-*"), None)
    if native_dir is not None:
        e = json.loads((native_dir / "metrics.json").read_text())["embedding_lowbit"]
        assert e["kept"] and e["bits"] == 2


def test_each_step_says_what_is_left_of_the_run(reference):
    """Priced from what this run measured: nothing before the student has trained, then its
    seconds per step price the pruning recovery, and a finished step prices its kind."""
    said = [line for line in (reference.parent / "stdout.txt").read_text().splitlines()
            if "left in this run:" in line]
    assert said and "not timed yet (distill" in said[0]
    assert re.search(r"left in this run: about \d+ (s|min), plus \d+ steps? not timed yet "
                     r"\(trim-vocab", said[1]), said[1]  # the recovery, at the student's rate
    assert all("distill" not in line for line in said[1:])


def test_every_artifact_records_the_stage_that_made_it(reference):
    """stage.json names the stage object the CLI and the plan ran, with its config's fields."""
    import dataclasses

    from edgebert.stages import STAGES

    records = [json.loads(p.read_text()) for p in reference.rglob("stage.json")
               if "checkpoint" not in p.parts]
    assert len(records) >= 6
    for rec in records:
        stage = STAGES[rec["stage"]]
        assert set(rec["config"]) == {f.name for f in dataclasses.fields(stage.config)}, rec


def test_recommendation_follows_the_budget_and_latency(reference, tmp_path):
    """With latency in bench/, the fastest artifact within budget is recommended."""
    import shutil

    from edgebert.report.render import write_report

    got = rows(reference)
    fake = {"schema": "edgebert.bench/1", "machine": {"cpu": "test"}, "settings": {},
            "results": [{"artifact": a, "path": str(reference / a), "format": "x", "batch": 1,
                         "seq": 128, "source": "measured", "samples_ms": [ms], "p50_ms": ms,
                         "p90_ms": ms, "p99_ms": ms, "throughput_seq_s": 1000 / ms}
                        for a, ms in [("teacher", 10.0), ("student", 5.0), ("pruned", 2.0)]]}
    (reference / "bench").mkdir(exist_ok=True)
    (reference / "bench" / "fake.json").write_text(json.dumps(fake))
    # an artifact checked under arm64 emulation (the OpenVINO IR, where `edgebert arm-env`
    # has been run on this machine) also competes on arm64
    arm = {"arm64"} if any((r.get("arm64_emulation") or {}).get("checked")
                           for r in got.values()) else set()
    try:
        loose = write_report(reference, "teacher", budget=100.0)
        assert loose["recommended"]["x86"] == "pruned" and set(loose["recommended"]) == \
            {"x86"} | arm
        # a budget the pruned model misses, whatever the tiny models scored: in a copy of
        # the run, its test score is set 5 points under the teacher's, and the budget is
        # just under that drop; the next fastest within it wins (the student where it is
        # within, else the teacher, always within a positive budget)
        run = tmp_path / "run"
        shutil.copytree(reference, run, ignore=shutil.ignore_patterns("*.onnx", "*.ort", "*.pt",
                                                                       "*.safetensors", "*.bin"))
        fake["results"] = [r | {"path": str(run / r["artifact"])} for r in fake["results"]]
        (run / "bench" / "fake.json").write_text(json.dumps(fake))
        pruned = json.loads((run / "pruned" / "metrics.json").read_text())
        pruned["test"]["accuracy"] = got["teacher"]["accuracy"] - 0.05
        (run / "pruned" / "metrics.json").write_text(json.dumps(pruned))
        budget = 5.0 - 1e-6
        strict = write_report(run, "teacher", budget=budget)
        within = got["student"]["delta_vs_teacher"] >= -budget
        assert strict["recommended"]["x86"] == ("student" if within else "teacher")
        assert "Recommended for x86" in (run / "report.md").read_text()
        none = write_report(reference, "teacher", budget=-100.0)  # nothing can be within it
        assert none["recommended"] == {} and set(none["none_within_budget"]) == {"x86"} | arm
        best = none["none_within_budget"]["x86"]
        assert best["delta_vs_teacher"] == max(r["delta_vs_teacher"] for a, r in got.items()
                                               if a != "teacher" and r["target"] != "arm64"
                                               and r.get("delta_vs_teacher") is not None)
        assert f"No artifact for x86 within -100 points of the teacher: the most accurate, " \
            f"{best['best']}" in (reference / "report.md").read_text()
    finally:
        (reference / "bench" / "fake.json").unlink()
        write_report(reference, "teacher", budget=100.0)


def _created(run: Path) -> dict[str, str]:
    return {str(p.parent.relative_to(run)): json.loads(p.read_text())["created"]
            for p in run.rglob("stage.json") if ".partial" not in str(p)}


def test_sigkill_at_several_points_resumes_without_redoing_work(reference, tiny_teacher,
                                                               tmp_path):
    run = tmp_path / "run"
    cmd = compress_cmd(tiny_teacher, run)
    # kill when each of these appears: mid-distillation, mid-quantization (pruning is
    # killed at random points by test_crash.py)
    for marker in ("student.partial", "int8"):
        proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (run / marker).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = _created(run)
        # no artifact directory is ever half written: finished means metrics.json is there
        for name in finished:
            assert (run / name / "metrics.json").exists()
        res = subprocess.run(cmd[:], env=env(), capture_output=True, text=True, timeout=600) \
            if marker == "int8" else None
        if res is not None:
            assert res.returncode == 0, res.stderr[-3000:]
            after = _created(run)
            assert all(after[k] == v for k, v in finished.items()), "a finished stage was redone"
            assert res.stdout.count("(done)") >= len(finished)
    ref, got = rows(reference), rows(run)
    assert set(ref) == set(got)
    for name in ref:
        for key in ("accuracy", "params", "size_mb", "delta_vs_teacher"):
            assert got[name].get(key) == pytest.approx(ref[name].get(key)), (name, key)


def test_a_run_directory_refuses_another_recipe(reference, tiny_teacher):
    res = subprocess.run(compress_cmd(tiny_teacher, reference, "students.0.layers=[1,2]"),
                         env=env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "holds a run of another recipe" in res.stderr and "Traceback" not in res.stderr


def test_a_run_of_an_older_version_resumes_where_its_recipe_lacks_a_new_field(reference,
                                                                            tiny_teacher,
                                                                            tmp_path):
    """A recipe.yaml written before a field existed is the same recipe at that field's
    default: the run resumes (nothing redone) and its recipe.yaml gains the field."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    saved = run / "recipe.yaml"
    lines = saved.read_text().splitlines(keepends=True)
    older = [ln for ln in lines if not ln.startswith("fallback:")]  # at its default here
    assert len(older) == len(lines) - 1
    saved.write_text("".join(older))
    res = subprocess.run(compress_cmd(tiny_teacher, run), env=env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "another recipe" not in res.stderr and res.stdout.count("(done)") >= 5
    assert saved.read_text() == "".join(lines)


def test_a_last_model_past_the_budget_gets_an_earlier_one_quantized(reference, tiny_teacher,
                                                                    tmp_path):
    """Where the pruned model has spent the budget on dev and the student has not, the chain
    also trims and quantizes the student (int8/<target>-student), and the report has it."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "recipe.yaml").unlink()  # the same run, resumed under a tighter budget
    teacher_dev = json.loads((run / "teacher" / "metrics.json").read_text())["dev"]
    examples = teacher_dev["examples"]
    # dev as if pruning had cost 40 points and distillation nothing; the tiny task's few dev
    # examples give the INT8 guard a floor of 300 / examples points (15): more than the 10
    # the pruned model leaves of a 50-point budget, less than the student's 50
    assert 10 < 300 / examples < 50
    for name, lost in (("student", 0.0), ("pruned", 0.4), ("pruned_trimmed", 0.4)):
        path = run / name / "metrics.json"
        m = json.loads(path.read_text())
        m["dev"][m["metric"]] = teacher_dev[m["metric"]] - lost
        path.write_text(json.dumps(m))
    res = subprocess.run(compress_cmd(tiny_teacher, run, "max_accuracy_drop=50"), env=env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "student (0.00 under) is quantized too (fallback)" in res.stdout
    assert "trim the vocabulary of student" in res.stdout
    native = next(p for p in (run / "int8").iterdir() if not p.name.endswith("-student"))
    fallback = run / "int8" / f"{native.name}-student"
    stage = json.loads((fallback / "stage.json").read_text())
    assert Path(stage["config"]["model"]) == run / "student_trimmed"
    assert f"int8/{fallback.name}" in rows(run)
    # finished stages were not redone, and a rerun finds everything done
    assert json.loads((native / "stage.json").read_text()) == \
        json.loads((reference / "int8" / native.name / "stage.json").read_text())
    again = subprocess.run(compress_cmd(tiny_teacher, run, "max_accuracy_drop=50"), env=env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "finished in" not in again.stdout, again.stdout[-2000:]
    # a floor over the budget (15 points of a 10-point budget) asks for nothing lost on dev;
    # a student that lost a little leaves the teacher itself as the fallback
    from edgebert.compress.budget import fallback_model
    from edgebert.compress.recipe import load
    from edgebert.compress.run import survey

    said: list[str] = []
    recipe = load("tiny", [f"teacher.model={tiny_teacher}", "max_accuracy_drop=10"])
    assert fallback_model(recipe, "pruned_trimmed", survey(recipe, run), said.append) == "student"
    path = run / "student" / "metrics.json"
    m = json.loads(path.read_text())
    m["dev"][m["metric"]] = teacher_dev[m["metric"]] - 0.001
    path.write_text(json.dumps(m))
    assert fallback_model(recipe, "pruned_trimmed", survey(recipe, run), said.append) == "teacher"
    assert "teacher (0.00 under) is quantized too (fallback)" in said[-1]
    loose = load("tiny", [f"teacher.model={tiny_teacher}", "max_accuracy_drop=50"])
    assert fallback_model(loose, "student", survey(loose, run),
                          said.append) is None  # 0.1 points under leaves the floor of 15


def test_a_student_past_the_budget_gets_a_deeper_chain(reference, tiny_teacher, tmp_path):
    """Where the student itself has spent the budget on dev, the chain distils a student
    with one more teacher layer (its own plus the teacher's top one it lacks), prunes it by
    the same steps, and trims and quantizes the result; the report has its INT8 model."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "recipe.yaml").unlink()
    teacher_dev = json.loads((run / "teacher" / "metrics.json").read_text())["dev"]
    # 40 points lost leave 10 of a 50-point budget: under the guard's floor of 15 (the
    # previous test); the teacher is then the main chain's fallback as well
    for name in ("student", "pruned", "pruned_trimmed"):
        path = run / name / "metrics.json"
        m = json.loads(path.read_text())
        m["dev"][m["metric"]] = teacher_dev[m["metric"]] - 0.4
        path.write_text(json.dumps(m))
    res = subprocess.run(compress_cmd(tiny_teacher, run, "max_accuracy_drop=50"), env=env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "the chain again from student_deep, teacher layers [0, 2, 3]" in res.stdout
    stage = json.loads((run / "student_deep" / "stage.json").read_text())
    assert stage["layers"] == [0, 2, 3]  # the tiny teacher has 4; the student took 0 and 3
    pruned = json.loads((run / "pruned_deep" / "stage.json").read_text())
    assert Path(pruned["config"]["model"]) == run / "student_deep"
    native = next(p.name for p in (reference / "int8").iterdir() if p.name != "arm64")
    deep = run / "int8" / f"{native}-pruned_deep"
    assert Path(json.loads((deep / "stage.json").read_text())["config"]["model"]) == \
        run / "pruned_deep_trimmed"
    got = rows(run)
    assert f"int8/{native}-pruned_deep" in got and f"int8/{native}-teacher" in got
    # the teacher pruned by learned masks too, trimmed and quantized: a candidate in the report
    learned = json.loads((run / "learned" / "metrics.json").read_text())
    assert learned["learned"]["target_sparsity"] == 0.5
    assert learned["params"] < learned["parent"]["params"]
    assert "learned" in got and f"int8/{native}-learned" in got
    again = subprocess.run(compress_cmd(tiny_teacher, run, "max_accuracy_drop=50"), env=env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "finished in" not in again.stdout, again.stdout[-2000:]


def test_a_refused_optional_export_is_written_down_and_skipped(tmp_path):
    """The .pte for phones is one export the chain can do without: where its stage refuses
    it (here: no such model; without executorch, the missing package), the refusal is
    written beside its directory, the run goes on, and the plan skips it from then on."""
    from edgebert.compress.plan import Found, Step, plan
    from edgebert.compress.recipe import load
    from edgebert.compress.run import _optional_export
    from edgebert.stages.export.config import ExportConfig

    out = tmp_path / "export" / "executorch"
    out.parent.mkdir()
    cfg = ExportConfig(model=str(tmp_path / "missing"), out=str(out), format="executorch",
                       precision="int8")
    said: list[str] = []
    step = Step("export missing to executorch INT8", "export", cfg)
    assert _optional_export(step, cfg, said.append) == out and not out.exists()
    why = (tmp_path / "export" / "executorch.refused").read_text().strip()
    assert why and why in said[0] and "the run goes on without it" in said[0]
    planned = plan(load("default"), tmp_path, Found(native_target="x86-vnni",
                                                    refused=frozenset({"export/executorch"})),
                   said.append)
    assert "export/executorch" not in [str(s.out.relative_to(tmp_path)) for s in planned]
