"""The runtime apps embed: a deployment bundle in, labels and scores out.

Needs only `onnxruntime`, `tokenizers` and `numpy` (`pip install
'edgebert[runtime]'`); it never imports torch. A bundle is a directory:

    manifest.json    schema edgebert.bundle/1: task kind, labels, max_length,
                     target, precision, and the sha256 of every file below
    model.onnx       (or model.ort) the FP32 or INT8 model
    tokenizer.json   the model's fast tokenizer (absent when the manifest's input is
                     "text": the tokenizer is inside the model, an onnxruntime-extensions
                     op, and `tokenizers` is not needed at all)

    >>> # model = load("bundles/rt")
    >>> # model.predict(["a gripping, funny film"])
    >>> # [{'label': 'positive', 'score': 0.93, 'scores': {'negative': 0.07, 'positive': 0.93}}]

`predict` is safe to call from several threads at once: ONNX Runtime sessions
are, and the tokenizer is configured once at load and only read afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgebert.kinds import KINDS as ALL_KINDS

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
    files = manifest.get("files")
    needs = [manifest.get("model")] + ([] if manifest.get("input") == "text"
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
        from edgebert.formats import session

        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if verify_hashes:
            verify(self.root, self.manifest)
        self.kind = self.manifest["kind"]
        self.labels = list(self.manifest.get("labels") or [])
        self.max_length = int(self.manifest["max_length"])
        self.batch_size = batch_size
        self.text_in_graph = self.manifest.get("input") == "text"
        model = _inside(self.root, self.manifest["model"])
        self.session = session(model, threads, custom_ops=self.text_in_graph, error=BundleError)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.pad_id = int(self.manifest.get("pad_token_id", 0))
        if self.text_in_graph:
            return
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(_inside(self.root, "tokenizer.json")))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text

    def _encode(self, texts: list[str], pairs: list[str] | None):
        items = list(zip(texts, pairs)) if pairs is not None else texts
        encs = self.tokenizer.encode_batch(items)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = e.ids, e.attention_mask, e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return encs, {k: v for k, v in feed.items() if k in self.inputs}

    def predict(self, texts: list[str] | str, pairs: list[str] | None = None) -> list[dict]:
        """Labels and scores (classification, pair), a value (regression), or tags
        with character offsets (ner), for each text; long texts are truncated."""
        if isinstance(texts, str):
            texts = [texts]
        texts = _strings(texts, "texts")
        if pairs is not None:
            if self.kind != "pair" or len(pairs) != len(texts):
                raise ValueError("pairs: only for a sentence-pair model, one per text")
            pairs = _strings(pairs, "pairs")
        elif self.kind == "pair":
            raise ValueError("this is a sentence-pair model: pass pairs=[...]")
        if self.text_in_graph:
            return [self._from_text(t, pairs[i] if pairs else None) for i, t in enumerate(texts)]
        out: list[dict] = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i:i + self.batch_size]
            encs, feed = self._encode(chunk, pairs[i:i + self.batch_size] if pairs else None)
            logits = self.session.run(None, feed)[0]
            out += [self._result(logits[j], encs[j], chunk[j]) for j in range(len(chunk))]
        return out

    def _from_text(self, text: str, pair: str | None) -> dict:
        """One string through the one-file model (batch 1, its tokenizer op's limit)."""
        out = dict(zip(self.outputs, self.session.run(None, text_feed(text, pair))))
        if self.kind == "regression":
            return {"value": float(out["value"][0])}
        if self.kind == "ner":  # per token: the graph has no word ids ([CLS]/[SEP] dropped)
            return {"entities": [
                {"word": text[a:b], "start": int(a), "end": int(b), "tag": str(tag),
                 "score": float(p)}
                for tag, p, (a, b) in zip(out["tags"], out["tag_scores"], out["offsets"])
                if b > a]}
        scores = out["scores"][0].astype(np.float64)
        return {"label": str(out["label"][0]), "score": float(out["score"][0]),
                "scores": {name: float(v) for name, v in zip(self.labels, scores)}}

    def _result(self, logits: np.ndarray, enc, text: str) -> dict:
        if self.kind == "regression":
            return {"value": float(logits.reshape(-1)[0])}
        if self.kind == "ner":
            return {"entities": self._tags(logits, enc, text)}
        p = _softmax(logits.astype(np.float64))
        best = int(p.argmax())
        return {"label": self.labels[best], "score": float(p[best]),
                "scores": {name: float(v) for name, v in zip(self.labels, p)}}

    def _tags(self, logits: np.ndarray, enc, text: str) -> list[dict]:
        """One tag per word (its first sub-token), with character offsets into `text`."""
        first: dict[int, int] = {}  # word -> its first token
        end: dict[int, int] = {}  # word -> where its last piece ends
        for t, (word, (_, stop)) in enumerate(zip(enc.word_ids, enc.offsets)):
            if word is not None:
                first.setdefault(word, t)
                end[word] = stop
        words = []
        for word, t in first.items():
            p = _softmax(logits[t].astype(np.float64))
            best, start = int(p.argmax()), enc.offsets[t][0]
            words.append({"word": text[start:end[word]], "start": start, "end": end[word],
                          "tag": self.labels[best], "score": float(p[best])})
        return words


def text_feed(text: str, pair: str | None = None) -> dict:
    """Inputs of a one-file model for one text. NUL ends a string in ONNX Runtime's
    string tensors (every language binding), so it is dropped, as `tokenizers` does."""
    feed = {"text": np.array([str(text).replace("\x00", "")], dtype=object)}
    if pair is not None:
        feed["text_pair"] = np.array([str(pair).replace("\x00", "")], dtype=object)
    return feed


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def load(bundle: str | Path, threads: int | None = None, batch_size: int = 32) -> Model:
    """Open a bundle written by `edgebert bundle` (hashes checked)."""
    return Model(bundle, threads=threads, batch_size=batch_size)


def _strings(values, name: str) -> list[str]:
    """The inputs as they are: a None or a number is a caller's bug, not text to classify."""
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name}: item {bad[0]} is {type(values[bad[0]]).__name__}, not str")
    return list(values)
