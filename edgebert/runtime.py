"""The runtime apps embed: a deployment bundle in, labels and scores out.

Needs only `onnxruntime`, `tokenizers` and `numpy` (`pip install
'edgebert[runtime]'`), and `openvino` for an OpenVINO bundle (`pip install
'edgebert[openvino]'`); it never imports torch. An ExecuTorch bundle (model.pte) is for
a phone's ExecuTorch runtime (examples/mobile/); served here with `pip install
'edgebert[executorch]'`, whose Python bindings load torch, it checks what the phone runs.
A bundle is a directory:

    manifest.json    schema edgebert.bundle/1: task kind, labels, max_length,
                     target, precision, and the sha256 of every file below
    model.onnx       (or model.ort, OpenVINO's model.xml and model.bin, or model.pte) the model;
                     the manifest's "format" says which runtime runs it
    tokenizer.json   the model's fast tokenizer (absent when the manifest's input is
                     "text": the tokenizer is inside the model, an onnxruntime-extensions
                     op, and `tokenizers` is not needed at all)

    >>> # model = load("bundles/rt")
    >>> # model.predict(["a gripping, funny film"])
    >>> # [{'label': 'positive', 'score': 0.93, 'scores': {'negative': 0.07, 'positive': 0.93}}]

`predict` is safe to call from several threads at once: ONNX Runtime sessions
are, OpenVINO calls are serialized, and the tokenizer is configured once at load and only
read afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgebert.kinds import KINDS as ALL_KINDS
from edgebert.kinds import kind

SCHEMA = "edgebert.bundle/1"
KINDS = tuple(name for name, k in ALL_KINDS.items() if k.served)


class BundleError(ValueError):
    """A bundle that is missing, altered or unsafe; the message names the file."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inside(root: Path, name: str) -> Path:
    """`root/name`, refusing names that leave `root` (.., absolute paths, links)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise BundleError(f"{root}/manifest.json: file name {name!r} is not a plain file name")
    path = root / name
    if path.is_symlink():
        raise BundleError(f"{path}: a link; bundles hold plain files only")
    return path


def read_manifest(root: Path) -> dict:
    root = Path(root)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{root}: no manifest.json; write a bundle with `edgebert bundle`") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{root}/manifest.json: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BundleError(f"{root}/manifest.json: not an {SCHEMA} manifest")
    if manifest.get("kind") not in KINDS:
        raise BundleError(f"{root}/manifest.json: task kind {manifest.get('kind')!r} is not one "
                          f"the runtime serves ({', '.join(KINDS)})")
    return manifest


def verify(root: Path, manifest: dict) -> None:
    """Every file the manifest lists exists, is inside the bundle, and has its hash."""
    from edgebert.formats import FORMATS

    files = manifest.get("files")
    fmt = FORMATS.get(manifest.get("format", "onnx"))
    companions = list(fmt.companions) if fmt else []  # OpenVINO's weights: checked too
    needs = [manifest.get("model")] + companions + ([] if manifest.get("input") == "text"
                                                    else ["tokenizer.json"])
    if not isinstance(files, dict) or any(n not in files for n in needs):
        raise BundleError(f"{root}/manifest.json: must list {' and '.join(map(str, needs))} "
                          f"in 'files'")
    for name, digest in files.items():
        path = _inside(root, name)
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle")
        if sha256(path) != digest:
            raise BundleError(f"{path}: sha256 differs from the manifest; the bundle was altered "
                              f"or is incomplete")


class Model:
    """A loaded bundle. `predict(texts)` returns one dict per text."""

    def __init__(self, root: str | Path, threads: int | None = None, batch_size: int = 32,
                 verify_hashes: bool = True):
        from edgebert.formats import FORMATS, format_named

        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if verify_hashes:
            verify(self.root, self.manifest)
        self.kind = self.manifest["kind"]
        self.task = kind(self.kind)
        self.labels = list(self.manifest.get("labels") or [])
        self.max_length = int(self.manifest["max_length"])
        self.batch_size = batch_size
        self.text_in_graph = self.manifest.get("input") == "text"
        model = _inside(self.root, self.manifest["model"])
        name = self.manifest.get("format", "onnx")
        fmt = format_named(name) if name in FORMATS else None
        if fmt is None or not fmt.served:
            raise BundleError(f"{self.root}/manifest.json: format {name!r} is not one the "
                              f"runtime serves")
        fmt.require(BundleError)
        # run as it was checked: precision and tokenizer-in-graph as the bundle records them
        self.runner = fmt.open(model, threads, self.manifest, BundleError)
        self.inputs = self.runner.inputs
        self.outputs = self.runner.outputs
        self.pad_id = int(self.manifest.get("pad_token_id", 0))
        if self.text_in_graph:
            return
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(_inside(self.root, "tokenizer.json")))
        self.tokenizer.enable_truncation(self.max_length, strategy=self.task.truncation)
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text

    def _encode(self, seqs: list, items: int):
        """Token ids of every sequence, padded to the longest: [items, L], or
        [items, choices, L] where the model takes several sequences per input."""
        encs = self.tokenizer.encode_batch(seqs)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = e.ids, e.attention_mask, e.type_ids
        # [items, L], or [items, choices, L] where the kind's inputs have a choices axis
        shape = (items, width) if len(self.task.input_axes()) == 2 else (items, -1, width)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return encs, {k: v.reshape(shape) for k, v in feed.items() if k in self.inputs}

    def predict(self, texts: list[str] | str, pairs: list[str] | None = None,
                choices: list[list[str]] | None = None) -> list[dict]:
        """For each text: labels and scores (classification, pair), a value (regression),
        tags with character offsets (ner), or, for a multiple-choice model given
        contexts and `choices` (a list of candidate texts per context), the chosen
        index, its text and each choice's score. Long texts are truncated."""
        items = self.task.serve_items(texts, pairs, choices)
        if self.text_in_graph:
            return [self._from_text(given, seqs[0]) for given, seqs in items]
        out: list[dict] = []
        for i in range(0, len(items), self.batch_size):
            chunk = items[i:i + self.batch_size]
            if len({len(seqs) for _, seqs in chunk}) > 1:  # choice counts differ: one by one
                for item in chunk:
                    out += self._run([item])
            else:
                out += self._run(chunk)
        return out

    def _run(self, chunk: list[tuple]) -> list[dict]:
        seqs = [s for _, ss in chunk for s in ss]
        encs, feed = self._encode(seqs, len(chunk))
        logits = self.runner(feed)[0]
        per = len(seqs) // len(chunk)
        return [self.task.serve_result(logits[j], encs[j * per:(j + 1) * per], given,
                                       self.labels) for j, (given, _) in enumerate(chunk)]

    def _from_text(self, given, seq) -> dict:
        """One string (or pair) through the one-file model (batch 1, its tokenizer op's
        limit)."""
        text, pair = (seq, None) if isinstance(seq, str) else seq
        out = dict(zip(self.outputs, self.runner(text_feed(text, pair))))
        return self.task.text_result(out, text, self.labels)


def text_feed(text: str, pair: str | None = None) -> dict:
    """Inputs of a one-file model for one text. NUL ends a string in ONNX Runtime's
    string tensors (every language binding), so it is dropped, as `tokenizers` does."""
    feed = {"text": np.array([str(text).replace("\x00", "")], dtype=object)}
    if pair is not None:
        feed["text_pair"] = np.array([str(pair).replace("\x00", "")], dtype=object)
    return feed


def load(bundle: str | Path, threads: int | None = None, batch_size: int = 32) -> Model:
    """Open a bundle written by `edgebert bundle` (hashes checked)."""
    return Model(bundle, threads=threads, batch_size=batch_size)
