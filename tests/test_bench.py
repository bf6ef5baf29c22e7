"""Bench results (schema, percentiles, import) and the CI gate's exit codes."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edgebert.bench.latency import summary
from edgebert.bench.machine import fingerprint
from edgebert.bench.run import SCHEMA, load
from edgebert.bench.worker import time_texts
from helpers import run_cli


def test_percentiles_by_hand():
    s = summary([float(x) for x in range(1, 11)], batch=4)  # 1..10
    # linear interpolation at rank q*(n-1): p50 at 4.5 -> 5.5, p90 at 8.1 -> 9.1, p99 at 8.91
    assert s["p50_ms"] == pytest.approx(5.5) and s["p90_ms"] == pytest.approx(9.1)
    assert s["p99_ms"] == pytest.approx(9.91) and s["mean_ms"] == pytest.approx(5.5)
    assert s["iqr_ms"] == pytest.approx(4.5) and s["throughput_seq_s"] == pytest.approx(4000 / 5.5)


@pytest.fixture(scope="module")
def tiny_onnx(tiny_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "onnx"
    code, output = run_cli("export", "--model", tiny_teacher, "--format", "onnx", "--out", out)
    assert code == 0, output
    return out


def test_bench_round_trip_on_a_real_artifact(tiny_onnx, tmp_path):
    out = tmp_path / "b.json"
    code, output = run_cli("bench", tiny_onnx, "--batch", "1,2", "--seq", "16",
                           "--rounds", "2", "--runs", "5", "--warmup", "2", "--out", out)
    assert code == 0, output
    data = load(out)
    assert data["schema"] == SCHEMA and {"cpu", "flags", "cores", "libraries"} <= set(
        data["machine"])
    assert [(r["batch"], r["seq"]) for r in data["results"]] == [(1, 16), (2, 16)]
    r = data["results"][0]
    assert r["n"] == 10 and len(r["samples_ms"]) == 10 and r["format"] == "onnx"
    assert r["accuracy"]["metric"] == "accuracy" and r["source"] == "measured"
    assert json.loads(out.read_text()) == data
    code, output = run_cli("bench", "--import", out, "--out", tmp_path / "imp.json")
    assert code == 0 and "[imported]" in output
    assert all(r["source"] == "imported" for r in load(tmp_path / "imp.json")["results"])


def test_bench_times_real_texts_one_at_a_time(tiny_teacher, tiny_onnx, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a short one\n\n" + "a much longer text, " * 40 + "\nmiddle sized text\n")
    out = tmp_path / "t.json"
    code, output = run_cli("bench", tiny_teacher, tiny_onnx, "--texts", texts,
                           "--rounds", "1", "--runs", "6", "--warmup", "1", "--out", out)
    assert code == 0, output
    rows = load(out)["results"]
    assert [(r["format"], r["seq"], r["batch"], r["n"]) for r in rows] == [
        ("pytorch", "texts", 1, 6), ("onnx", "texts", 1, 6)]
    assert rows[0]["texts"]["count"] == 3  # the empty line is not a text
    # each sample is one text at its own length, cycling; the long one truncated to 128
    timed = time_texts(str(tiny_onnx), ["a short one", "word " * 300], threads=1,
                       warmup=1, runs=4)
    short = timed["tokens"][0]
    assert timed["tokens"] == [short, 128, short, 128] and short < 20
    assert len(timed["samples_ms"]) == 4
    code, output = run_cli("bench", tiny_teacher, "--texts", tmp_path / "none.txt")
    assert code == 2 and "--texts" in output and "none.txt" in output


def test_one_process_per_artifact_and_round_times_the_grid_and_the_texts(
        tiny_teacher, tiny_onnx, tmp_path, monkeypatch):
    """A bench of a grid and texts runs one process per (artifact, round), each returning a
    result per workload, and writes the entries two separate benches write. The first round
    starts fresh interpreters, the later ones fork from a server per format."""
    from edgebert.bench import latency

    real, turns = latency.Turns.__call__, []

    def seen(self, path, workloads, fresh=False):  # the real turn; what its process answered
        answer = real(self, path, workloads, fresh)
        turns.append((fresh or not self.fork, answer))
        return answer

    texts = tmp_path / "texts.txt"
    texts.write_text("a short one\n" + "a much longer text, " * 10 + "\nmiddle sized text\n")
    common = ["--rounds", "2", "--runs", "3", "--warmup", "1"]
    grid = ["--batch", "1,2", "--seq", "16"]
    monkeypatch.setattr(latency.Turns, "__call__", seen)
    code, output = run_cli("bench", tiny_teacher, tiny_onnx, *grid, "--texts", texts, *common,
                           "--out", tmp_path / "one.json")
    assert code == 0, output
    # 2 artifacts x 2 rounds: 4 processes, each of its own pid, each timed all 3 workloads
    assert len(turns) == 4 and len({a["pid"] for _, a in turns}) == 4
    assert all(len(a["results"]) == 3 for _, a in turns)
    assert [len(r["samples_ms"]) for r in turns[0][1]["results"]] == [3, 3, 3]
    on_linux = sys.platform.startswith("linux")
    assert [fresh for fresh, _ in turns] == [True, True] + [not on_linux] * 2
    monkeypatch.setattr(latency.Turns, "__call__", real)
    code, output = run_cli("bench", tiny_teacher, tiny_onnx, *grid, *common,
                           "--out", tmp_path / "grid.json")
    assert code == 0, output
    code, output = run_cli("bench", tiny_teacher, tiny_onnx, "--texts", texts, *common,
                           "--out", tmp_path / "texts.json")
    assert code == 0, output
    one = load(tmp_path / "one.json")
    two = [load(tmp_path / f) for f in ("grid.json", "texts.json")]
    rows = two[0]["results"] + two[1]["results"]
    assert one["settings"] == two[0]["settings"] == two[1]["settings"]
    assert [(r["artifact"], r["format"], r["batch"], r["seq"]) for r in one["results"]] == [
        (r["artifact"], r["format"], r["batch"], r["seq"]) for r in rows] == [
        (a, f, b, s) for b, s in ((1, 16), (2, 16), (1, "texts"))
        for a, f in (("teacher", "pytorch"), ("onnx", "onnx"))]
    timing = {"samples_ms", "rounds_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "stdev_ms",
              "iqr_ms", "throughput_seq_s", "peak_rss_mb"}  # measured: equal keys, not values
    for mine, theirs in zip(one["results"], rows):
        assert list(mine) == list(theirs)  # the same keys, in the same order
        assert {k: v for k, v in mine.items() if k not in timing} == {
            k: v for k, v in theirs.items() if k not in timing}
        assert len(mine["rounds_ms"]) == 2 and mine["n"] == 6 and mine["peak_rss_mb"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="turns fork on Linux only")
def test_a_forked_turn_that_fails_says_why_and_the_next_one_runs(tiny_onnx, tmp_path):
    """A turn forked from its format's server answers with its error in one line, and the
    server forks the next turn: each in a process of its own, not the server's."""
    import os

    from edgebert.bench.latency import Turns
    from edgebert.errors import UserError

    padded = [{"batch": 1, "seq": 8, "warmup": 0, "runs": 2}]
    with Turns(threads=1, fork=True) as turn:
        with pytest.raises(UserError, match="timing process failed .*FileNotFoundError"):
            turn(str(tiny_onnx), [{"texts": str(tmp_path / "none.json"), "warmup": 0,
                                   "runs": 1}])
        first, second = turn(str(tiny_onnx), padded), turn(str(tiny_onnx), padded)
        server = turn.servers["onnx"][0]
        assert len(first["results"][0]["samples_ms"]) == 2
        assert len({first["pid"], second["pid"], server.pid, os.getpid()}) == 4
        server.kill()  # as the OOM killer would, between turns
        server.wait()
        with pytest.raises(UserError, match="timing server stopped .exit status -9"):
            turn(str(tiny_onnx), padded)
    assert turn.servers == {}  # stopped and closed, the dead one too


def test_the_gate_warns_where_turns_were_not_fresh_interpreters():
    """`edgebert check` was calibrated on fresh interpreters: two results benched otherwise
    (edgebert bench without --fresh) compare with a warning; results from before the
    setting existed count as fresh."""
    from edgebert.bench.compare import compare

    machine = fingerprint(2)
    row = {"artifact": "m", "batch": 1, "seq": 128, "samples_ms": [1.0] * 30,
           "rounds_ms": [[1.0] * 10] * 3, "p50_ms": 1.0, "accuracy": None}
    old = {"machine": machine, "settings": {"rounds": 3}, "results": [row]}
    forked = old | {"settings": {"rounds": 3, "turns": "forked"}}
    assert not [w for w in compare(old, old, 0.05, 1.0)[1] if "turns" in w]
    warned = [w for w in compare(old, forked, 0.05, 1.0)[1] if "turns" in w]
    assert warned == ["turns baseline fresh, candidate forked: the gate was calibrated on "
                      "fresh interpreters (edgebert bench --fresh)"]


def test_gate_benches_both_models_interleaved_in_one_run(tiny_onnx, tmp_path):
    """The same model against itself (an A/A check): the gate benches both in one run of 8
    rounds, passes, and can keep that run's result."""
    out = tmp_path / "gate.json"
    code, output = run_cli("check", "--baseline-model", tiny_onnx, "--candidate-model",
                           tiny_onnx, "--seq", "16", "--bench-out", out)
    assert code == 0, output
    assert "round 8/8" in output and "within thresholds" in output
    data = load(out)
    base, cand = data["results"]
    assert (base["artifact"], cand["artifact"]) == ("baseline", "candidate")
    assert len(base["rounds_ms"]) == len(cand["rounds_ms"]) == 8 and base["seq"] == 16
    code, output = run_cli("check", "--baseline-model", tiny_onnx, "--candidate",
                           out)  # a model against a file: which way was meant?
    assert code == 2 and "--baseline-model and --candidate-model" in output


def result(samples, accuracy=0.80, machine=None):
    return {"schema": SCHEMA, "machine": machine or fingerprint(2),
            "results": [{"artifact": "m", "batch": 1, "seq": 128, "samples_ms": list(samples),
                         "accuracy": {"metric": "accuracy", "value": accuracy,
                                      "split": "test"}}]}


def gate(tmp_path, base, cand, *extra):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "cand.json").write_text(json.dumps(cand))
    return run_cli("check", "--baseline", tmp_path / "base.json", "--candidate",
                   tmp_path / "cand.json", "--max-slowdown", "5%", *extra)


def noisy(seed, scale=1.0, n=200):
    rng = np.random.default_rng(seed)  # latency-like: a floor plus a right tail
    return scale * (10 + rng.gamma(2.0, 0.3, n))


def test_gate_exit_codes(tmp_path):
    base = result(noisy(0))
    code, out = gate(tmp_path, base, result(noisy(1, 1.20)))
    assert code == 1 and "FAIL: slower" in out
    code, out = gate(tmp_path, base, result(noisy(2, 0.80)))
    assert code == 0 and "within thresholds" in out
    code, out = gate(tmp_path, base, result(noisy(3)))  # the same model again: noise
    assert code == 0
    code, out = gate(tmp_path, base, result(noisy(4), accuracy=0.79))
    assert code == 1 and "FAIL: accuracy" in out
    code, out = gate(tmp_path, base, result(noisy(4), accuracy=0.79),
                     "--max-drop-vs-baseline", "2")
    assert code == 0
    # the option's former name still works, and says the new one
    code, out = gate(tmp_path, base, result(noisy(4), accuracy=0.79), "--max-accuracy-drop", "2")
    assert code == 0 and "--max-accuracy-drop is now --max-drop-vs-baseline" in out
    code, out = gate(tmp_path, base, result(noisy(5, 1.03)))  # slower, but under 5 %
    assert code == 0


def test_gate_says_loudly_when_machines_differ(tmp_path):
    other = fingerprint(2) | {"cpu": "Some ARM board", "machine": "aarch64"}
    code, out = gate(tmp_path, result(noisy(0)), result(noisy(1), machine=other))
    assert code == 0 and "MACHINES DIFFER" in out
    code, out = gate(tmp_path, result(noisy(0)), result(noisy(1), machine=other),
                     "--require-same-machine")
    assert code == 2


def test_gate_refuses_a_file_that_is_not_a_bench_result(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    code, out = run_cli("check", "--baseline", tmp_path / "x.json", "--candidate",
                        tmp_path / "x.json")
    assert code == 2 and "not an edgebert.bench/1 result" in out


def grouped(seed, scale=1.0, rounds=8, runs=40, process_sd=0.04):
    """Samples per process: each process has its own offset (placement, clocks)."""
    rng = np.random.default_rng(seed)
    groups = [list(scale * (1 + rng.normal(0, process_sd)) * (10 + rng.gamma(2.0, 0.3, runs)))
              for _ in range(rounds)]
    return {"schema": SCHEMA, "machine": fingerprint(2),
            "results": [{"artifact": "m", "batch": 1, "seq": 128, "accuracy": None,
                         "samples_ms": [x for g in groups for x in g], "rounds_ms": groups}]}


def test_gate_uses_processes_as_units_when_it_has_them():
    """With process-level offsets (~4 %), the per-process interval is wider than the one that
    treats samples as independent, never fires on A/A, and still catches a 20 % slowdown."""
    from edgebert.bench.compare import compare

    for seed in range(20):
        base, cand = grouped(2 * seed), grouped(2 * seed + 1)
        (g,), _ = compare(base, cand, 0.05, 1.0)
        assert not g.slowdown, (seed, g)
        for d in (base, cand):
            del d["results"][0]["rounds_ms"]
        (f,), _ = compare(base, cand, 0.05, 1.0)
        assert g.high - g.low > f.high - f.low
    (v,), _ = compare(grouped(100), grouped(101, scale=1.2), 0.05, 1.0)
    assert v.slowdown


def test_a_process_caught_in_a_noise_burst_does_not_hide_a_real_slowdown():
    """One baseline and one candidate process slowed by 40 % (another job on the machine):
    the rank interval of a 15 % slowdown still clears the 5 % threshold."""
    from edgebert.bench.compare import compare

    caught = 0
    for seed in range(10):
        base, cand = grouped(200 + 2 * seed, process_sd=0.01), \
            grouped(201 + 2 * seed, scale=1.15, process_sd=0.01)
        for d in (base, cand):
            r = d["results"][0]
            r["rounds_ms"][seed % 8] = [1.4 * x for x in r["rounds_ms"][seed % 8]]
            r["samples_ms"] = [x for g in r["rounds_ms"] for x in g]
        (v,), _ = compare(base, cand, 0.05, 1.0)
        caught += v.slowdown
        (aa,), _ = compare(base, grouped(300 + seed, process_sd=0.01), 0.05, 1.0)
        assert not aa.slowdown
    assert caught == 10
