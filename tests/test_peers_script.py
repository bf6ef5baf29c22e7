"""benchmarks/peers.py and the modules it stands on, on a tiny model: the products the
roofline counts against a count by hand, the GEMM floor and the bf16 GEMM it times, the
fastest-peer row, the bf16 skip rule, and the recommended artifact found from any
directory. The peers themselves (the Optimum and optimum-intel venvs, the interleaved
bench) run in the benchmark, not here."""

from __future__ import annotations

import json

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def peers():
    return load_benchmark("peers")


@pytest.fixture(scope="module")
def roofline():
    return load_benchmark("roofline")


@pytest.fixture(scope="module")
def artifacts():
    return load_benchmark("peer_artifacts")


def test_gemm_shapes_and_useful_ops_match_a_count_by_hand(roofline, tiny_teacher):
    seq, L, h, heads, i = 16, 4, 32, 2, 64  # conftest's tiny teacher: 4 layers, 2 heads
    shapes = roofline.gemm_shapes(tiny_teacher, seq)
    per_layer = ([(1, seq, h, h)] * 4 + [(1, seq, h, i), (1, seq, i, h)]
                 + [(heads, seq, h // heads, seq), (heads, seq, seq, h // heads)])
    assert sorted(shapes) == sorted(per_layer * L + [(1, 1, h, h), (1, 1, h, 2)])
    by_hand = L * 2 * seq * (4 * h * h + 2 * h * i + 2 * seq * h) + 2 * (h * h + 2 * h)
    assert roofline.useful_ops(shapes) == by_hand


def test_gemm_floor_times_every_shape_once(roofline, tiny_teacher):
    shapes = roofline.gemm_shapes(tiny_teacher, 16)
    floor = roofline.gemm_floor(shapes, threads=1)
    assert len(floor["shapes"]) == len(set(shapes))
    assert sum(s["count"] for s in floor["shapes"]) == len(shapes)
    assert {s["op"] for s in floor["shapes"]} == {"MatMulInteger", "MatMul"}
    assert floor["total_ms"] == pytest.approx(floor["int8_linear_ms"] + floor["fp32_attention_ms"])
    assert floor["int8_linear_ms"] > 0 and floor["fp32_attention_ms"] > 0


def test_the_bf16_gemm_rate_counts_only_where_openvino_computes_bf16(roofline, artifacts):
    """OpenVINO compiles the product with a bf16 hint; on a CPU without bf16 it computes in
    f32 and says so, and the bf16 rate is then absent, not an f32 rate under its name."""
    seconds, computed = roofline.time_gemm_bf16(1, 32, 64, 48, threads=1)
    assert seconds > 0
    has_bf16 = artifacts.bf16_skipped(artifacts.cpu_flag_set()) is None
    assert computed == ("bf16" if has_bf16 else "f32")
    rates = roofline.gemm_rates(threads=1, shapes=[(32, 64, 48)])
    assert {r["precision"] for r in rates} == {"int8", "f32", "bf16"}
    bf16 = next(r for r in rates if r["precision"] == "bf16")
    assert bf16["computed_in"] == computed and bf16["gops"] > 0
    assert (roofline.peak_gops(rates, "bf16") == bf16["gops"]) == has_bf16
    assert roofline.peak_gops(rates, "int8") > 0


def test_bf16_is_measured_only_where_the_cpu_has_it(artifacts):
    assert artifacts.bf16_skipped({"avx512f", "amx_bf16", "amx_int8"}) is None
    assert artifacts.bf16_skipped({"avx512f", "avx512_bf16"}) is None
    why = artifacts.bf16_skipped({"avx2", "fma"})
    assert "neither AMX-BF16 nor AVX512-BF16" in why


def row(p50, texts=None, acc=0.8):
    return {"p50_ms": p50, "texts_p50_ms": texts, "test_accuracy": acc,
            "delta_vs_teacher_points": 100 * (acc - 0.8)}


def test_the_fastest_peer_is_chosen_among_the_teachers_peers_per_workload(peers):
    rows = {"teacher-pytorch": row(13.0, 9.0), "openvino": row(4.0, 3.0),
            "openvino-int8": row(3.7, 3.5, 0.79), "inc-dynamic": row(3.0),  # not on texts
            "bert-base-shaped-pytorch": row(1.0, 1.0),  # not a peer of the teacher
            "edgebert-fp32-onnx": row(2.0, 1.5), "edgebert-recommended": row(1.5, 1.2)}
    padded = peers.fastest_peer(rows)
    assert padded["peer"] == "inc-dynamic" and padded["recommended_faster_by"] == 2.0
    texts = peers.fastest_peer(rows, "texts_p50_ms")
    assert texts["peer"] == "openvino" and texts["recommended_faster_by"] == pytest.approx(2.5)
    rows.pop("inc-dynamic")
    padded = peers.fastest_peer(rows)
    assert padded["peer"] == "openvino-int8"
    assert padded["delta_vs_teacher_points"] == pytest.approx(-1.0)
    table = peers.table({"rows": {n: r | {"size_mb": 1.0} for n, r in rows.items()},
                         "fastest_peer": {"padded": padded, "texts": texts}})
    assert table.splitlines()[-1].startswith(
        "| the fastest peer of the teacher on this CPU: openvino-int8 (128 tokens), "
        "openvino (real texts) |")
    assert table.splitlines()[-1].endswith("| 2.5x / 2.5x |")
    assert peers.fastest_peer({"edgebert-recommended": row(1.5)}) is None


def test_the_recommended_parent_is_found_from_any_directory(artifacts, tmp_path, monkeypatch):
    """stage.json records the parent as `compress` was given it, relative to where it ran;
    the scripts find it inside the run from anywhere (a first run from another directory
    failed on `runs/default/pruned_trimmed`)."""
    run = tmp_path / "elsewhere" / "runs" / "default"
    for name in ("pruned_trimmed", "int8/x86-vnni"):
        (run / name).mkdir(parents=True)
        (run / name / "stage.json").write_text("{}")
    (run / "int8/x86-vnni/stage.json").write_text(
        json.dumps({"parent": "runs/default/pruned_trimmed"}))
    (run / "report.json").write_text(json.dumps({"recommended": {"x86": "int8/x86-vnni"}}))
    monkeypatch.chdir(tmp_path)  # not where the run was made
    assert artifacts.recommended_parent(run) == run / "pruned_trimmed"
    (run / "pruned_trimmed" / "stage.json").unlink()
    with pytest.raises(SystemExit, match="parent runs/default/pruned_trimmed is not in the run"):
        artifacts.recommended_parent(run)
