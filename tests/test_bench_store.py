"""benchmarks/store.py and benchmarks/tables.py: a row goes into the store and comes back
the same, and the README's and the docs' tables are what the committed store generates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(request):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import the modules beside them
    request.addfinalizer(lambda: sys.path.remove(str(ROOT / "benchmarks")))
    import store
    import tables
    return store, tables


def test_a_row_round_trips_through_the_store(bench, tmp_path):
    store, _ = bench
    path = tmp_path / "results.jsonl"
    row = store.Row("peers", "edgebert-recommended", {"p50_ms": 1.77, "size_mb": 3.4},
                    "0123abc", "2026-01-01T00:00:00+00:00",
                    {"cpu": "AMD EPYC 9B14", "machine": "x86_64", "flags": ["avx2", "avx512_vnni"],
                     "cores": 2, "threads": 2}, {"onnxruntime": "1.32.0"}, "python x.py")
    store.append([row], path)
    store.append([row], path)
    assert store.load(path) == [row, row]
    assert store.rows("peers", machine="epyc-vnni", path=path) == [row, row]
    assert store.rows("peers", machine="xeon-amx", path=path) == []
    assert json.loads(path.read_text().splitlines()[0])["metrics"] == {"p50_ms": 1.77,
                                                                       "size_mb": 3.4}
    with pytest.raises(ValueError, match="suite and a case"):
        store.Row("", "x", {}, "c", "d", {})


def test_every_committed_row_reads_and_names_its_machine(bench):
    store, _ = bench
    rows = store.load()
    assert rows and all(r.machine.get("cpu") for r in rows)
    assert {"peers", "tasks", "teacher", "distill", "int8", "prune", "gate", "pretrain",
            "gpu"} <= {r.suite for r in rows}


def test_committed_tables_match_the_store(bench):
    _, tables = bench
    marked = [p.relative_to(ROOT).as_posix() for p in tables.PAGES
              if "<!-- table:" in p.read_text()]
    assert {"README.md", "docs/benchmarks.md", "docs/defaults.md"} <= set(marked), marked
    for page in tables.PAGES:
        text = page.read_text()
        assert tables.render(text) == text, f"{page}: run python benchmarks/tables.py"


def test_every_results_table_is_generated(bench):
    """The benchmark page holds results only, and the defaults page's tables are its
    measurements: each of their tables lies between a generator's markers."""
    _, tables = bench
    for name in ("benchmarks.md", "defaults.md"):
        text = (ROOT / "docs" / name).read_text()
        outside = tables.MARKER.sub("", text)
        assert not [ln for ln in outside.splitlines() if ln.startswith("|")], name


def test_a_declared_table_reads_figures_from_the_rows_it_picks(bench, tmp_path):
    store, _ = bench
    import tablefmt
    path = tmp_path / "results.jsonl"
    machine = {"cpu": "AMD EPYC", "machine": "x86_64", "flags": ["avx2"]}
    store.append([store.Row("demo", "a", {"acc": 0.8125, "4.57 ms": 2.0,
                                          "rows": [{"artifact": "int8/x", "speedup": 9.87}]},
                            "c1", "2026-01-01T00:00:00+00:00", machine),
                  store.Row("demo", "a", {"acc": 0.5, "4.57 ms": 1.0, "rows": []}, "c2",
                            "2026-01-02T00:00:00+00:00", machine)], path)
    old, new = tablefmt.Pick("demo", "a", commit="c1"), tablefmt.Pick("demo", "a")
    table = tablefmt.Table(["what", "result"], [
        tablefmt.line("{o.4.57 ms:.1f} ms", "{o.acc!p:.2f} %, {o.rows.int8/x.speedup:.1f}x, "
                      "{n.acc!p:+.0f} ({gain!p:.1f})", o=old, n=new,
                      derive=lambda r: {"gain": r["o"].metrics["acc"] - r["n"].metrics["acc"]})])
    assert table.render(path).splitlines()[2] == "| 2.0 ms | 81.25 %, 9.9x, +50 (31.2) |"


def test_no_legacy_results_file_is_left(bench):
    assert sorted(p.name for p in (ROOT / "benchmarks" / "results").rglob("*")
                  if p.is_file()) == ["results.jsonl"]


def test_the_runner_runs_what_a_suite_needs_first_and_once(bench):
    import run
    assert run.order(["int8", "prune"]) == ["teacher", "distill", "int8", "prune"]
    with pytest.raises(SystemExit, match="no suite"):
        run.order(["nope"])


def test_compare_puts_two_machines_side_by_side(bench):
    import compare
    table = compare.compare("peers", {"machine": "epyc-avx2"}, {"machine": "epyc-vnni"},
                            "p50_ms")
    assert "| edgebert-recommended | p50_ms | 3.744 | 1.766 | 0.47 |" in table.splitlines()


def test_every_script_that_records_rows_is_a_suite_of_the_runner(bench):
    """Each script names the suite its rows go to (SUITE = ...), and the runner runs that
    script under that name: `python benchmarks/run.py NAME` reaches every suite."""
    import re

    import run
    named = {}
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        text = script.read_text()
        found = re.search(r'^SUITE = "([\w-]+)"', text, re.MULTILINE)
        if re.search(r"(?<![.\w])record\(", text) and script.name != "common.py":
            assert found, f"{script.name} records rows but names no SUITE"
        if found:
            named[found.group(1)] = script.name
    assert named and {n: run.SUITES[n].script[0] for n in named if n in run.SUITES} == named
    assert set(named) <= set(run.SUITES), set(named) - set(run.SUITES)
    own_files = [p.name for p in (ROOT / "benchmarks").glob("*.py")  # the store's file aside
                 if p.name not in ("legacy.py", "store.py") and re.search(
                     r'"results" / |EDGEBERT_BENCH_RESULTS|sys\.path\.insert', p.read_text())]
    assert not own_files, own_files

def test_a_case_keeps_its_own_command_and_words_apart_from_its_figures(bench, tmp_path,
                                                                        monkeypatch):
    store, _ = bench
    import common
    monkeypatch.setattr(store, "STORE", tmp_path / "results.jsonl")
    common.record("demo", {"a": {"p50_ms": 1.0, "command": "edgebert bench a",
                                 "what": "the first", "notes": {"run": "runs/x"}},
                           "b": {"p50_ms": 2.0}},
                  command="python benchmarks/demo.py", notes={"setting": "batch 1"},
                  machine={"gpu": "none"}, date="2026-01-01T00:00:00+00:00")
    a, b = store.load(tmp_path / "results.jsonl")
    assert (a.metrics, a.command) == ({"p50_ms": 1.0}, "edgebert bench a")
    assert a.notes == {"setting": "batch 1", "what": "the first", "run": "runs/x"}
    assert (b.metrics, b.command, b.notes) == ({"p50_ms": 2.0}, "python benchmarks/demo.py",
                                               {"setting": "batch 1"})
    assert a.date == b.date == "2026-01-01T00:00:00+00:00" and b.machine["gpu"] == "none"


def test_every_name_a_script_imports_from_edgebert_exists():
    """The scripts reach into edgebert's modules; a move or a rename there must not leave a
    suite that fails only when someone runs it, minutes in."""
    import ast
    import importlib

    missing = []
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgebert"):
                module = importlib.import_module(node.module)
                missing += [f"{script.name}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and importlib.util.find_spec(
                                f"{node.module}.{a.name}") is None]
    assert not missing, missing
