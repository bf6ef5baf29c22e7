"""The report from a run directory of real tiny artifacts, and its HTML in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def run_dir(tiny_teacher, tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    run.mkdir()
    shutil.copytree(tiny_teacher, run / "teacher")
    for args in (["export", "--model", run / "teacher", "--format", "onnx", "--out", run / "onnx"],
                 ["quantize", "--model", run / "teacher", "--target", "x86-avx2", "--max-drop",
                  "5", "--out", run / "int8" / "x86-avx2"],
                 ["quantize", "--model", run / "teacher", "--target", "arm64", "--max-drop", "5",
                  "--out", run / "int8" / "arm64"],
                 ["bench", run / "teacher", run / "onnx", run / "int8" / "x86-avx2",
                  "--seq", "32", "--rounds", "1", "--runs", "3", "--warmup", "1",
                  "--out", run / "bench" / "x86.json"]):
        code, output = run_cli(*args)
        assert code == 0, output
    return run


def test_report_rows(run_dir):
    code, output = run_cli("report", run_dir)
    assert code == 0, output
    rep = json.loads((run_dir / "report.json").read_text())
    rows = {r["artifact"]: r for r in rep["rows"]}
    assert set(rows) == {"teacher", "onnx", "int8/x86-avx2", "int8/arm64"}
    assert rep["teacher"] == "teacher" and rows["teacher"]["delta_vs_teacher"] == 0
    assert rows["teacher"]["speedup_vs_teacher"] == pytest.approx(1.0)
    assert rows["int8/x86-avx2"]["precision"] == "int8" and rows["int8/x86-avx2"]["p50_ms"] > 0
    assert rows["int8/x86-avx2"]["latency_source"].startswith("measured on")
    assert rows["int8/arm64"]["latency_source"] == "not measured"  # emulation is no latency
    assert rows["int8/x86-avx2"]["size_ratio_vs_teacher"] > 1
    assert rep["pareto"] and set(rep["pareto"]) <= set(rows)
    # the paired SE of each Δ: the FP32 export predicts what its teacher does (0 SE)
    assert rows["onnx"]["delta_se"] == 0.0 and "delta_se" not in rows["teacher"]
    assert rows["int8/x86-avx2"]["delta_se"] >= 0.0
    md = (run_dir / "report.md").read_text()
    assert "| int8/x86-avx2 |" in md and "not measured" in md and "± SE" in md
    page = (run_dir / "report.html").read_text()
    assert "<svg" in page and "<script>" in page
    # self-contained: no URL but the SVG namespace, so it opens offline
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "recommended" not in rep  # no budget: no recommendation


def test_a_moved_run_keeps_its_latency(run_dir, tmp_path):
    """A run directory copied elsewhere and its original gone (a CI artifact, a renamed
    folder): its bench results still belong to its artifacts, by their place in the run;
    a result whose recorded path still exists elsewhere is not taken for this run's."""
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    x86 = json.loads((moved / "bench" / "x86.json").read_text())
    for r in x86["results"]:  # as if measured at a place that no longer exists
        r["path"] = r["path"].replace(str(run_dir), str(tmp_path / "gone"))
    (moved / "bench" / "x86.json").write_text(json.dumps(x86))
    code, output = run_cli("report", moved)
    assert code == 0, output
    rows = {r["artifact"]: r for r in json.loads((moved / "report.json").read_text())["rows"]}
    assert rows["int8/x86-avx2"]["p50_ms"] > 0 and rows["teacher"]["p50_ms"] > 0
    for r in x86["results"]:  # the original run, still there: its results are its own
        r["path"] = r["path"].replace(str(tmp_path / "gone"), str(run_dir))
    (moved / "bench" / "x86.json").write_text(json.dumps(x86))
    code, output = run_cli("report", moved)
    rows = {r["artifact"]: r for r in json.loads((moved / "report.json").read_text())["rows"]}
    assert code == 0 and rows["int8/x86-avx2"]["latency_source"] == "not benched"


def test_report_budget_from_the_option_or_the_runs_recipe(run_dir):
    """`--max-accuracy-drop`, or a compress run's max_accuracy_drop: the recommendation per
    target."""
    code, output = run_cli("report", run_dir, "--max-accuracy-drop", "100")
    assert code == 0, output
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["budget_points"] == 100 and rep["recommended"]["arm64"] == "int8/arm64"
    assert rep["recommended"]["x86"] in {"onnx", "int8/x86-avx2"}  # the faster of the two
    (run_dir / "recipe.yaml").write_text("max_accuracy_drop: 0.0\n")
    try:
        code, output = run_cli("report", run_dir)
        rep = json.loads((run_dir / "report.json").read_text())
        assert code == 0 and rep["budget_points"] == 0.0
    finally:
        (run_dir / "recipe.yaml").unlink()
    code, output = run_cli("report", run_dir, "--max-accuracy-drop", "-1")
    assert code == 2 and "--max-accuracy-drop" in output
    # the option's former name still works, and says the new one
    code, output = run_cli("report", run_dir, "--budget", "100")
    assert code == 0 and "--budget is now --max-accuracy-drop" in output
    assert json.loads((run_dir / "report.json").read_text())["budget_points"] == 100


def test_a_run_without_latency_names_its_smallest_artifact_not_none(run_dir, tmp_path):
    """A run with bench disabled (`--set bench.enabled=false`): every artifact is within the
    budget, but none has a p50. The report named none for x86 and said none was within the
    budget, the most accurate +1.18 points; it now names the smallest and says why."""
    unbenched = tmp_path / "unbenched"
    shutil.copytree(run_dir, unbenched)
    shutil.rmtree(unbenched / "bench")
    code, output = run_cli("report", unbenched, "--budget", "100")
    assert code == 0, output
    rep = json.loads((unbenched / "report.json").read_text())
    rows = {r["artifact"]: r for r in rep["rows"]}
    assert not any(r.get("p50_ms") for r in rows.values())
    smallest = min((r for r in rows.values() if r["target"] != "arm64" and r["stage"] != "finetune"),
                   key=lambda r: r["size_mb"])["artifact"]
    assert smallest == "int8/x86-avx2" and rep["recommended"]["x86"] == smallest
    assert "x86" not in rep["none_within_budget"]
    md = (unbenched / "report.md").read_text()
    assert "smallest within 100 points of the teacher on x86 (no latency measured" in md
    assert "No artifact for x86" not in md


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="Chromium not installed (apt-get install chromium)")
def test_report_html_in_headless_chromium(run_dir, tmp_path):
    run_cli("report", run_dir)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = (run_dir / "report.html").as_uri()
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,900", url],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000  # a page with a plot, not blank
    # console errors: Chromium logs them with --enable-logging=stderr --v=0 as "CONSOLE"
    log = subprocess.run([CHROMIUM, *flags, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert "<svg" in log.stdout and "Uncaught" not in log.stderr
    errors = [ln for ln in log.stderr.splitlines() if "CONSOLE" in ln and "error" in ln.lower()]
    assert not errors, errors


def test_plot_labels_of_nearby_points_do_not_overlap():
    from edgebert.report.render import place_labels

    # the default run's exports: four artifacts within a fraction of a pixel of each other
    anchors = [(300.0, 120.0), (300.4, 120.2), (301.0, 119.8), (300.2, 121.0), (500.0, 300.0)]
    names = ["export/onnx", "export/ort", "export/ort-text", "torchscript", "teacher"]
    boxes = place_labels(anchors, names, 640, 360)
    for i, (x, y, w, h) in enumerate(boxes):
        assert 0 <= x and x + w <= 640 and h <= y <= 360
        for bx, by, bw, bh in boxes[i + 1:]:
            assert x + w <= bx or bx + bw <= x or y <= by - bh or by <= y - h, (names, boxes)
    assert boxes[-1][:2] == (508.0, 294.0)  # a point alone keeps its label beside it


def test_a_student_far_over_its_teacher_flags_the_teacher(run_dir):
    """A student beating its teacher by more than the budget means the teacher is the weak
    link (WNUT's undertrained default teacher: F1 0.08, its students 0.44)."""
    from edgebert.report.collect import weak_teacher
    from edgebert.report.render import markdown, page

    rows = [{"artifact": "teacher", "stage": "finetune", "delta_vs_teacher": 0.0},
            {"artifact": "student", "stage": "distill", "delta_vs_teacher": 36.57},
            {"artifact": "int8/x86-avx2", "stage": "quantize", "delta_vs_teacher": 0.5},
            {"artifact": "int8/arm64", "stage": "quantize", "delta_vs_teacher": None}]
    assert weak_teacher(rows, 1.0) == {"artifact": "student", "delta_vs_teacher": 36.57}
    assert weak_teacher(rows, 40.0) is None
    assert weak_teacher(rows[:1] + rows[2:], 1.0) is None  # +0.5 is within the budget
    noisy = [rows[0], rows[1] | {"delta_se": 20.0}, rows[2] | {"delta_vs_teacher": 2.5,
                                                                "delta_se": 1.0}]
    assert weak_teacher(noisy, 1.0) == {"artifact": "int8/x86-avx2", "delta_vs_teacher": 2.5}
    assert weak_teacher(noisy[:2], 1.0) is None  # 36.57 is under two SEs of 20: noise

    rep = json.loads((run_dir / "report.json").read_text())
    rep["weak_teacher"] = weak_teacher(rows, 1.0)
    line = "Warning: student is +36.57 points over its teacher, more than the budget"
    assert line in markdown(rep) and line in page(rep)


def test_the_recommendation_follows_the_workload(run_dir, tmp_path):
    """Padded inputs and real texts can order runtimes differently; the report shows both
    and recommends on the one asked for (texts by default: what an app sends)."""
    from edgebert.report.render import write_report

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("bench"))
    (run / "bench").mkdir()

    def result(artifact, seq, ms):
        return {"artifact": artifact, "path": str(run / artifact), "format": "x", "batch": 1,
                "seq": seq, "source": "measured", "samples_ms": [ms], "p50_ms": ms,
                "p90_ms": ms, "p99_ms": ms, "throughput_seq_s": 1000 / ms,
                **({"texts": {"count": 10}} if seq == "texts" else {})}

    fake = {"schema": "edgebert.bench/1", "machine": {"cpu": "test", "machine": "x86_64"},
            "settings": {}, "results": [
                result("teacher", 128, 10.0), result("onnx", 128, 2.0),
                result("int8/x86-avx2", 128, 3.0), result("teacher", "texts", 5.0),
                result("onnx", "texts", 2.0), result("int8/x86-avx2", "texts", 1.0)]}
    (run / "bench" / "latency.json").write_text(json.dumps(fake))
    texts = write_report(run, "teacher", budget=100.0)
    rows = {r["artifact"]: r for r in texts["rows"]}
    assert texts["recommended"] == {"x86": "int8/x86-avx2", "arm64": "int8/arm64"}
    assert "texts one at a time" in rows["int8/x86-avx2"]["recommended"]
    assert rows["int8/x86-avx2"]["texts_speedup_vs_teacher"] == pytest.approx(5.0)
    assert rows["int8/x86-avx2"]["speedup_vs_teacher"] == pytest.approx(10 / 3)
    assert "p50 ms, texts" in (run / "report.md").read_text()
    padded = write_report(run, "teacher", budget=100.0, workload="padded")
    assert padded["recommended"]["x86"] == "onnx"
    # arm64: never timed on this x86 machine, so the smallest within the budget, said so
    assert "no device latency" in rows["int8/arm64"]["recommended"]
    # a phone's imported results: its arm64 artifact's latency; its time for the FP32
    # export (an artifact for any architecture, benched here on x86) is not an x86 latency
    phone = {"schema": "edgebert.bench/1", "machine": {"cpu": "phone", "machine": "aarch64"},
             "settings": {}, "results": [dict(result("int8/arm64", 128, 7.0), source="imported"),
                                         dict(result("onnx", 128, 0.5), source="imported")]}
    (run / "bench" / "phone.json").write_text(json.dumps(phone))
    both = write_report(run, "teacher", budget=100.0, workload="padded")
    rows = {r["artifact"]: r for r in both["rows"]}
    assert rows["int8/arm64"]["p50_ms"] == 7.0 and "imported" in rows["int8/arm64"][
        "latency_source"]
    assert rows["onnx"]["p50_ms"] == 2.0 and rows["onnx"]["arch"] == "x86_64"
    assert both["recommended"] == {"x86": "onnx", "arm64": "int8/arm64"}
    assert rows["int8/arm64"]["recommended"].startswith("fastest within 100 points")


def test_a_regression_report_speaks_its_metric():
    """A regression task is scored in Pearson: the report's column says so and prints the
    coefficient, never "accuracy" or a percentage; its logs give no top-1 agreement (one
    output has no top-1)."""
    from edgebert.parity import agreement_text
    from edgebert.report.render import markdown, page

    rows = [{"artifact": "teacher", "stage": "finetune", "metric": "pearson",
             "accuracy": 0.8940, "delta_vs_teacher": 0.0, "p50_ms": 20.0},
            {"artifact": "int8/x86-vnni", "stage": "quantize", "metric": "pearson",
             "accuracy": 0.8885, "delta_vs_teacher": -0.55, "delta_se": 1.02, "p50_ms": 2.0}]
    rep = {"run": "runs/vader", "teacher": "teacher", "rows": rows, "machines": [],
           "setting": {"batch": 1, "seq": 128}}
    md = markdown(rep)
    header = next(ln for ln in md.splitlines() if ln.startswith("| artifact"))
    assert "| Pearson |" in header and "accuracy" not in header
    assert "| 0.8885 | -0.55 | ±1.02 |" in md and "%" not in md.split(header)[1]
    assert "Pearson on the test split" in md and "1 point = 0.01 of Pearson" in md
    html_page = page(rep)
    assert "<th>Pearson</th>" in html_page and "<th>accuracy</th>" not in html_page
    assert "0.8885" in html_page and "88.85 %" not in html_page
    assert "test Pearson (x 100)" in html_page  # the plot's axis

    ner = markdown(rep | {"rows": [r | {"metric": "entity_f1", "accuracy": 0.479}
                                   for r in rows]})
    assert "| entity F1 |" in ner and "| 47.90 % |" in ner
    assert agreement_text({"top1_agreement": 1.0}, "regression") == ""
    assert agreement_text({"top1_agreement": 0.998}, "classification") == \
        ", top-1 agreement 99.80%"


def test_arm64_chooses_between_onnx_runtime_and_an_emulation_checked_executorch_program():
    """A .pte checked under arm64 emulation is an arm64 candidate beside ONNX Runtime's
    INT8: with no device latency the smaller within the budget is picked, and the report
    says among what; unchecked, it competes on x86 only (where XNNPACK's time is x86's)."""
    from edgebert.report.collect import recommend

    def rows(pte_mb: float, checked: bool = True) -> list[dict]:
        base = {"delta_vs_teacher": -0.5, "texts_p50_ms": None, "p50_ms": None}
        return [{**base, "artifact": "teacher", "stage": "finetune", "format": "pytorch",
                 "arch": "x86_64", "size_mb": 90.0, "delta_vs_teacher": 0.0, "p50_ms": 10.0},
                {**base, "artifact": "int8/x86-vnni", "stage": "quantize", "format": "onnx",
                 "arch": "x86_64", "size_mb": 3.1, "p50_ms": 1.0},
                {**base, "artifact": "int8/arm64", "stage": "quantize", "format": "onnx",
                 "arch": "aarch64", "size_mb": 3.1},
                {**base, "artifact": "export/executorch", "stage": "export",
                 "format": "executorch", "arch": "x86_64", "size_mb": pte_mb, "p50_ms": 2.0,
                 "arm64_emulation": {"checked": checked}}]

    smaller = rows(2.5)
    assert recommend(smaller, 1.0) == {"x86": "int8/x86-vnni", "arm64": "export/executorch"}
    said = next(r for r in smaller if r["artifact"] == "export/executorch")["recommended"]
    assert said.startswith("smallest within 1 point of the teacher on arm64, among "
                           "executorch and onnx (no device latency")
    assert recommend(rows(5.6), 1.0)["arm64"] == "int8/arm64"
    assert recommend(rows(2.5, checked=False), 1.0)["arm64"] == "int8/arm64"
    # an OpenVINO IR checked on arm64 competes there too; the text names every runtime
    ir = {"delta_vs_teacher": -0.2, "p50_ms": 1.5, "texts_p50_ms": None,
          "artifact": "int8/openvino-int8", "stage": "quantize", "format": "openvino",
          "arch": "x86_64", "size_mb": 2.0, "arm64_emulation": {"checked": True}}
    with_ir = rows(2.5) + [ir]
    assert recommend(with_ir, 1.0)["arm64"] == "int8/openvino-int8"
    assert ir["recommended"].startswith("smallest within 1 point of the teacher on arm64, "
                                        "among executorch, onnx and openvino")
