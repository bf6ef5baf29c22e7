"""benchmarks/peers.py's roofline on a tiny model: the products it counts against a count
by hand, and the GEMM floor it times from them. The peers themselves (Optimum's venv, the
interleaved bench) run in the benchmark, not here."""

from __future__ import annotations

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def peers():
    return load_benchmark("peers")


def test_gemm_shapes_and_useful_ops_match_a_count_by_hand(peers, tiny_teacher):
    seq, L, h, heads, i = 16, 4, 32, 2, 64  # conftest's tiny teacher: 4 layers, 2 heads
    shapes = peers.gemm_shapes(tiny_teacher, seq)
    per_layer = ([(1, seq, h, h)] * 4 + [(1, seq, h, i), (1, seq, i, h)]
                 + [(heads, seq, h // heads, seq), (heads, seq, seq, h // heads)])
    assert sorted(shapes) == sorted(per_layer * L + [(1, 1, h, h), (1, 1, h, 2)])
    by_hand = L * 2 * seq * (4 * h * h + 2 * h * i + 2 * seq * h) + 2 * (h * h + 2 * h)
    assert peers.useful_ops(shapes) == by_hand


def test_gemm_floor_times_every_shape_once(peers, tiny_teacher):
    shapes = peers.gemm_shapes(tiny_teacher, 16)
    floor = peers.gemm_floor(shapes, threads=1)
    assert len(floor["shapes"]) == len(set(shapes))
    assert sum(s["count"] for s in floor["shapes"]) == len(shapes)
    assert {s["op"] for s in floor["shapes"]} == {"MatMulInteger", "MatMul"}
    assert floor["total_ms"] == pytest.approx(floor["int8_linear_ms"] + floor["fp32_attention_ms"])
    assert floor["int8_linear_ms"] > 0 and floor["fp32_attention_ms"] > 0


def test_the_recommended_parent_is_found_from_any_directory(peers, tmp_path, monkeypatch):
    """stage.json records the parent as `compress` was given it, relative to where it ran;
    the scripts find it inside the run from anywhere (a first run from another directory
    failed on `runs/default/pruned_trimmed`)."""
    import json

    run = tmp_path / "elsewhere" / "runs" / "default"
    for name in ("pruned_trimmed", "int8/x86-vnni"):
        (run / name).mkdir(parents=True)
        (run / name / "stage.json").write_text("{}")
    (run / "int8/x86-vnni/stage.json").write_text(
        json.dumps({"parent": "runs/default/pruned_trimmed"}))
    (run / "report.json").write_text(json.dumps({"recommended": {"x86": "int8/x86-vnni"}}))
    monkeypatch.chdir(tmp_path)  # not where the run was made
    assert peers.recommended_parent(run) == run / "pruned_trimmed"
    (run / "pruned_trimmed" / "stage.json").unlink()
    with pytest.raises(SystemExit, match="parent runs/default/pruned_trimmed is not in the run"):
        peers.recommended_parent(run)
