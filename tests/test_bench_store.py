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
    for page in tables.PAGES:
        text = page.read_text()
        assert "<!-- table:" in text, page
        assert tables.render(text) == text, f"{page}: run python benchmarks/tables.py"


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
