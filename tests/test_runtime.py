"""`edgebert bundle` and `edgebert.runtime`: torch-free, thread-safe, refuses altered bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgebert.errors import UserError
from edgebert.runtime import BundleError, load

TEXTS = ["a good movie", "awful boring plot", "", "the the the " * 400, "superb!", "é 東京 🙂",
         "bad\x00\x07 film", "it was fine and lovely"]


@pytest.fixture(scope="module")
def bundle_dir(tiny_teacher, tmp_path_factory) -> Path:
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle

    out = tmp_path_factory.mktemp("bundle") / "b"
    bundle(BundleConfig(str(tiny_teacher), str(out)), log=lambda *_: None)
    return out


def test_bundle_has_manifest_hashes_and_reproduces_the_artifact(bundle_dir, tiny_teacher):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["kind"] == "classification" and manifest["labels"] == ["neg", "pos"]
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"}
    model = load(bundle_dir)
    got = model.predict(TEXTS)
    assert len(got) == len(TEXTS)
    for g in got:
        assert g["label"] in ("neg", "pos") and 0.5 <= g["score"] <= 1.0
        assert sum(g["scores"].values()) == pytest.approx(1.0)
    assert model.predict("a good movie")[0]["label"] == "pos"


def test_runtime_gives_the_same_answers_from_eight_threads(bundle_dir):
    model = load(bundle_dir, threads=1, batch_size=3)
    single = [model.predict(TEXTS) for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        many = list(pool.map(lambda _: model.predict(TEXTS), range(32)))
    assert all(m == single[0] for m in many + single)


def test_runtime_refuses_what_is_not_text(bundle_dir):
    model = load(bundle_dir)
    for bad in ([None], ["fine", 3], [b"bytes"]):
        with pytest.raises(TypeError, match="texts: item"):
            model.predict(bad)
    assert model.predict([""])[0]["label"] in ("pos", "neg")  # empty text is still text


def test_altered_or_escaping_bundles_are_refused(bundle_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    with open(bad / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="sha256 differs"):
        load(bad)
    for name in ("../outside.onnx", "/etc/passwd", "sub/model.onnx"):
        m = json.loads((bundle_dir / "manifest.json").read_text())
        m["files"][name] = "0" * 64
        shutil.rmtree(bad)
        shutil.copytree(bundle_dir, bad)
        (bad / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(BundleError, match="not a plain file name"):
            load(bad)
    shutil.rmtree(bad)
    shutil.copytree(bundle_dir, bad)
    (bad / "tokenizer.json").unlink()
    (bad / "tokenizer.json").symlink_to(bundle_dir / "tokenizer.json")
    with pytest.raises(BundleError, match="a link"):
        load(bad)


def test_bundle_refuses_an_existing_directory(tiny_teacher, tmp_path):
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle

    (tmp_path / "b").mkdir()
    with pytest.raises(UserError, match="exists"):
        bundle(BundleConfig(str(tiny_teacher), str(tmp_path / "b")), log=lambda *_: None)


def venv_with(env_dir: Path, names: list[str]) -> Path:
    """A venv holding only `names` and what they require (markers evaluated), linked from
    this interpreter's installed copies: what `pip install` of them would give, without
    a download (the venv and pip install took ~35 s of CI's ten minutes)."""
    import sysconfig
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    venv.create(env_dir, with_pip=False, symlinks=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir),
                                                    "platbase": str(env_dir)}))
    todo, seen = list(names), set()
    while todo:
        dist = metadata.distribution(todo.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen:
            continue
        seen.add(key)
        todo += [r.name for r in map(Requirement, dist.requires or [])
                 if r.marker is None or r.marker.evaluate({"extra": ""})]
        root = Path(dist.locate_file(""))
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}
        for top in tops:  # packages, modules, their .libs and the .dist-info
            if not (site / top).exists():
                (site / top).symlink_to(root / top)
    return env_dir / "bin" / "python"


@pytest.mark.slow
def test_runtime_runs_in_a_venv_without_torch(bundle_dir, tiny_teacher, tmp_path):
    """Install just the runtime's dependencies next to the package sources; a bundle with
    the tokenizer inside then runs with `tokenizers` blocked as well."""
    from edgebert.stages.bundle.config import BundleConfig
    from edgebert.stages.bundle.stage import run as bundle
    from edgebert.stages.export.config import ExportConfig
    from edgebert.stages.export.stage import run as export

    quiet = lambda *_: None  # noqa: E731
    export(ExportConfig(model=str(tiny_teacher), out=str(tmp_path / "text"), format="onnx",
                        with_tokenizer=True), log=quiet)
    bundle(BundleConfig(str(tmp_path / "text"), str(tmp_path / "text-bundle")), log=quiet)
    py = venv_with(tmp_path / "venv", ["onnxruntime", "onnxruntime-extensions", "tokenizers",
                                       "numpy"])
    src = Path(__file__).resolve().parent.parent
    code = ("import sys, json; from edgebert.runtime import load; m = load(sys.argv[1]); "
            "print(json.dumps([m.predict(['a good movie', ''])[0]['label'], "
            "'torch' in sys.modules]))")
    res = subprocess.run([str(py), "-c", code, str(bundle_dir)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    label, torch_loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert label == "pos" and torch_loaded is False
    code = ("import sys, json; sys.modules['tokenizers'] = None; "
            "from edgebert.runtime import load; m = load(sys.argv[1]); "
            "print(json.dumps([m.predict(['a good movie'])[0]['label'], "
            "'torch' in sys.modules]))")
    res = subprocess.run([str(py), "-c", code, str(tmp_path / "text-bundle")],
                         capture_output=True, text=True,
                         env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == ["pos", False]
    no_torch = subprocess.run([str(py), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0  # torch really is absent there
    assert sys.executable != str(py)


def test_desktop_example_classifies_piped_text(bundle_dir):
    app = Path(__file__).resolve().parent.parent / "examples" / "desktop" / "classify.py"
    res = subprocess.run([sys.executable, str(app), str(bundle_dir), "--threads", "1"],
                         input="a good movie\nawful boring plot\n", capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    labels = [line.split("\t")[0] for line in res.stdout.splitlines()]
    assert labels == ["pos", "neg"]
