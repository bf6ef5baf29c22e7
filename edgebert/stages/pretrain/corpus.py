"""Pretraining corpora: plain text, one sentence per line, documents separated by
a blank line (the original BERT release's format), read lazily.

`build_debian` makes a real English corpus offline from Debian packages:
`apt-get download` (no install, no root needed) and `dpkg-deb -x`, then one
cleaner per package turns its files into that format.

    build_debian(Path("corpus"))   # corpus/dict-gcide.txt, corpus/wordnet-base.txt, ...
    for doc in documents(Path("corpus")): ...   # lists of sentences, file by file
"""

from __future__ import annotations

import functools
import gzip
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Set
from pathlib import Path

from edgebert.errors import UserError

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def corpus_files(path: Path) -> list[Path]:
    path = Path(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise UserError(f"--corpus {path}: no .txt files (one sentence per line, a blank line "
                        f"between documents); `edgebert corpus build --out {path}` makes one")
    return files


def documents(path: Path) -> Iterator[list[str]]:
    """Each document as a list of sentences, streamed: corpora larger than memory work."""
    for f in corpus_files(path):
        doc: list[str] = []
        try:
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        doc.append(line)
                    elif doc:
                        yield doc
                        doc = []
        except UnicodeDecodeError:
            raise UserError(f"{f}: not UTF-8 text; re-save it as UTF-8") from None
        if doc:
            yield doc


def sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    return [s for s in SENTENCE_END.split(text) if len(s) > 1]


# ------------------------------------------------------------ Debian packages

def _gcide(root: Path, held_out: Set[str] | None = None) -> Iterator[list[str]]:
    """One document per headword entry of the 1913 Webster / GCIDE dictionary, the first
    sentence led by its headword ("Abandon: To give up wholly"): MLM then learns what a
    word means from its definition, not only which words definitions share."""
    src = root / "usr/share/dictd/gcide.dict.dz"  # dictzip is gzip-compatible
    text = gzip.open(src, "rt", encoding="utf-8", errors="replace").read()
    start = text.find("Begin file 1 of 26")
    entries = re.split(r"\n(?=[A-Z][^\n\\]*\\[^\n]*\\)", text[start:])
    leaks = GlossFilter(_held_out_glosses() if held_out is None else held_out)
    for entry in entries[1:]:
        head = " ".join(entry.split("\\", 1)[0].replace('"', "").replace("*", "").split())
        body = re.sub(r"^[^\n]*\\[^\n]*\\[^\n]*\n", "", entry, count=1)  # headword line
        body = re.sub(r"\[[^\]]{0,400}\]", " ", body)  # [1913 Webster], [Obs.], etymologies
        body = re.sub(r"[{}]", "", body)
        body = re.sub(r"--[A-Z][\w. ]*", " ", body)  # --Bacon. (quotation sources)
        paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
        sents = [s for p in paras for s in sentences(re.sub(r"^\d+\.\s*", "", p))
                 if len(s.split()) >= 3 and not leaks.holds(s)]
        if sents:
            yield [f"{head}: {sents[0]}", *sents[1:]] if head else sents


@functools.cache
def _held_out_glosses() -> frozenset[str]:
    """The wordnet-mc task's dev and test glosses, from the packaged WordNet asset the task
    itself is built from; computed once per process for both dictionary cleaners."""
    from edgebert.data.wordnet import held_out_glosses, read_synsets
    from edgebert.sources import resolve_data

    return frozenset(held_out_glosses(read_synsets(resolve_data("wordnet-base"))))


class GlossFilter:
    """Tells sentences that hold one of `glosses` (case-insensitive). GCIDE took many
    definitions from WordNet word for word ("a vehicular brake that operates by
    compressed air; ..."): about 5 % of the wordnet-mc task's dev and test glosses are
    in it, so its cleaner drops those sentences, as the WordNet cleaner drops the
    synsets. Glosses are indexed by their first two words, so a sentence costs a
    lookup per word, not a scan per gloss.

    >>> f = GlossFilter({"a small domesticated canine", "to go"})
    >>> f.holds("Pup: A small domesticated canine; a young dog."), f.holds("A big dog.")
    (True, False)
    """

    def __init__(self, glosses: Set[str]):
        self.index: dict[tuple[str, str], list[str]] = {}
        for g in glosses:
            words = _words(g)
            if len(words) >= 3:  # "to go" would drop every sentence holding it
                self.index.setdefault((words[0], words[1]), []).append(" ".join(words))

    def holds(self, sentence: str) -> bool:
        words = _words(sentence)
        text = " " + " ".join(words) + " "
        return any(f" {g} " in text for pair in zip(words, words[1:])
                   for g in self.index.get(pair, ()))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _wordnet(root: Path) -> Iterator[list[str]]:
    """WordNet glosses: one document per synset, its words and definition ("Good,
    beneficial: promoting or enhancing well-being."), then its examples. The synsets
    whose gloss the wordnet-mc task's dev or test split shows (split seed 13) are left
    out, so a teacher pretrained on this corpus is not scored on text it read."""
    from edgebert.data.wordnet import read_synsets

    held_out = _held_out_glosses()
    for s in read_synsets(root / "usr/share/wordnet"):
        if s.definition in held_out:
            continue
        words = ", ".join(s.words)
        doc = [f"{words[0].upper()}{words[1:]}: {_sentence(s.definition)}"]
        doc += [_sentence(e[0].upper() + e[1:]) for e in s.examples if len(e.split()) >= 3]
        yield doc


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _fortunes(root: Path) -> Iterator[list[str]]:
    for f in sorted((root / "usr/share/games/fortunes").glob("*")):
        if f.suffix == ".dat" or not f.is_file():
            continue
        for item in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            sents = sentences(re.sub(r"\s*--\s*\S.*$", "", item, flags=re.S))
            if sents:
                yield sents


def _python_doc(root: Path) -> Iterator[list[str]]:
    """Python's reST sources: one document per file, prose paragraphs only."""
    for f in sorted(root.rglob("*.rst.txt")):
        doc = []
        for para in re.split(r"\n\s*\n", f.read_text(encoding="utf-8", errors="replace")):
            if para.startswith((" ", "..", "*", "=", "-", "+", "|", ">>>")) or "::" in para:
                continue  # directives, code, tables, titles
            para = re.sub(r"^[=~^\-#*]{3,}$", "", para, flags=re.M)  # title underlines
            para = re.sub(r":\w+:`~?([^`<]*?)(?: <[^>]*>)?`", r"\1", para)  # :func:`x` -> x
            para = para.replace("``", "").replace("`", "").replace("**", "").replace("*", "")
            doc += [s for s in sentences(para) if len(s.split()) >= 4]
        if doc:
            yield doc


PACKAGES = {"dict-gcide": _gcide, "wordnet-base": _wordnet, "fortunes-min": _fortunes,
            "python3.11-doc": _python_doc}


def download(package: str, into: Path) -> Path:
    """`apt-get download` one .deb and unpack it with `dpkg-deb -x` (no install)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise UserError("corpus build: needs apt-get and dpkg-deb (a Debian or Ubuntu machine)")
    res = subprocess.run(["apt-get", "download", package], cwd=into, capture_output=True,
                         text=True)
    debs = sorted(into.glob(f"{package}_*.deb"))
    if res.returncode != 0 or not debs:
        raise UserError(f"corpus build: `apt-get download {package}` failed: "
                        f"{(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    root = into / package
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    return root


def build_debian(out: Path, packages: list[str] | None = None, log=print) -> dict:
    """Write `<out>/<package>.txt` for each package; returns counts per package."""
    from tqdm.auto import tqdm

    packages = packages or list(PACKAGES)
    unknown = [p for p in packages if p not in PACKAGES]
    if unknown:
        raise UserError(f"--packages: no cleaner for {', '.join(unknown)}; known: "
                        f"{', '.join(PACKAGES)}")
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in tqdm(packages, desc="corpus", unit="package"):
            dst = out / f"{package}.txt"
            if dst.exists():
                log(f"{dst} exists; skipping")
                continue
            root = download(package, Path(tmp))
            docs = sents = words = 0
            part = dst.with_name(dst.name + ".partial")
            with open(part, "w", encoding="utf-8") as fh:
                for doc in PACKAGES[package](root):
                    fh.write("\n".join(doc) + "\n\n")
                    docs, sents = docs + 1, sents + len(doc)
                    words += sum(len(s.split()) for s in doc)
            part.rename(dst)
            counts[package] = {"documents": docs, "sentences": sents, "words": words}
            log(f"{package}: {docs} documents, {sents} sentences, {words / 1e6:.1f} M words")
    return counts
