"""Untrusted files and the runtime under abuse.

- no code path unpickles what a user hands in: every `torch.load` passes
  `weights_only=True`, weights load from safetensors only, `trust_remote_code`
  is never set (checked over the source tree);
- `predict` takes random Unicode, control characters, empty and huge inputs and
  batches without crashing, with outputs of the right shape;
- 100,000 calls in a loop keep the process's memory flat (`pytest -m soak`: a
  minute on 2 cores, so not in CI's ten).
"""

from __future__ import annotations

import ast
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SRC = Path(__file__).resolve().parent.parent / "edgebert"


def calls(name: str):
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if called == name:
                    yield path, node


def test_every_torch_load_is_weights_only():
    found = list(calls("load"))
    torch_loads = [(p, n) for p, n in found if isinstance(n.func, ast.Attribute)
                   and getattr(n.func.value, "id", None) == "torch"]
    assert torch_loads, "expected the checkpoint loader to use torch.load"
    for path, node in torch_loads:
        kw = {k.arg: k.value for k in node.keywords}
        assert "weights_only" in kw and getattr(kw["weights_only"], "value", None) is True, \
            f"{path}:{node.lineno}: torch.load without weights_only=True"


def test_weights_load_from_safetensors_only_and_no_remote_code():
    for path, node in calls("from_pretrained"):
        kw = {k.arg: k.value for k in node.keywords}
        assert "trust_remote_code" not in kw or getattr(kw["trust_remote_code"], "value",
                                                        None) is False, f"{path}:{node.lineno}"
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    assert "trust_remote_code=True" not in text
    assert "pickle.load" not in text


@pytest.fixture(scope="module")
def model(tiny_teacher, tmp_path_factory):
    from edgebert.runtime import load
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle

    out = tmp_path_factory.mktemp("abuse") / "b"
    bundle(BundleConfig(str(tiny_teacher), str(out)), log=lambda *_: None)
    return load(out, threads=1, batch_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), max_size=20))
def test_predict_survives_random_unicode(model, texts):
    out = model.predict(texts)
    assert len(out) == len(texts)
    for r in out:
        assert r["label"] in model.labels and 0.0 <= r["score"] <= 1.0


def test_predict_survives_control_characters_huge_texts_and_batches(model):
    texts = ["\x00\x01\x02\x1b[31m\u202e\ufeff", "", " " * 1000, "a" * 100_000,
             "\U0001F600" * 5000, "\ud7ff\ue000\uffff"] * 50
    out = model.predict(texts)
    assert len(out) == len(texts) == 300


@pytest.mark.soak
def test_memory_stays_flat_over_100k_calls(model):
    def rss_mb() -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    for _ in range(2000):  # warm up: allocator pools, ORT arenas
        model.predict(["a warm up text"])
    start = rss_mb()
    for i in range(100_000):
        model.predict([f"call {i % 97} of a long loop"])
    grown = rss_mb() - start
    print(f"RSS {start:.1f} MB -> {start + grown:.1f} MB over 100,000 calls")
    assert grown < 20, f"RSS grew by {grown:.1f} MB over 100,000 calls"
