"""`wordnet-mc`: a real multiple-choice task built from WordNet 3.0 (Debian's
wordnet-base): for a word, with its example sentence where WordNet has one, choose its
gloss among four; the three distractors are glosses of other words of the same part of
speech.

Every lemma is assigned to one split first (seeded), and an example's distractors are
drawn from synsets of its own split only, so no word and no gloss is seen in two
splits. One example per word: the first synset that lists it first. Sizes: 3,000 train,
1,000 dev, 1,000 test examples; chance is 25 %.

    >>> # task = wordnet_mc(seed=13)
    >>> # task.splits["dev"][0]
    >>> # ChoiceExample(context='kill: the pilot reported two kills during the mission',
    >>> #               choices=[...4 glosses...], label=2)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from edgebert.errors import UserError
from edgebert.kinds.choice import ChoiceExample

FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}
SIZES = {"train": 3000, "dev": 1000, "test": 1000}
FRACTIONS = {"train": 0.6, "dev": 0.2, "test": 0.2}
"""Of all lemmas, per split: the pool each split samples examples and distractors from."""
CHOICES = 4


@dataclass(frozen=True)
class Synset:
    pos: str
    words: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def read_synsets(root: Path) -> list[Synset]:
    """Every synset of the four data files, in file order. A line is
    `offset lexfile pos count word lex_id ... | definition; "example"; ...`."""
    synsets = []
    for pos, name in FILES.items():
        path = root / name
        if not path.exists():
            raise UserError(f"{path}: missing; the wordnet-base asset is incomplete "
                            f"(delete it from the cache and fetch again)")
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(" ") or " | " not in line:
                    continue  # the licence header
                head, gloss = line.split(" | ", 1)
                fields = head.split()
                count = int(fields[3], 16)
                words = tuple(_word(w) for w in fields[4:4 + 2 * count:2])
                examples = tuple(e.strip() for e in re.findall(r'"([^"]+)"', gloss)
                                 if e.strip())
                definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
                if definition:
                    synsets.append(Synset(pos, words, definition, examples))
    return synsets


def _word(raw: str) -> str:
    """`laying_waste` -> `laying waste`; adjectives' `(a)`, `(p)` markers dropped."""
    return re.sub(r"\([a-z]+\)$", "", raw).replace("_", " ").lower()


def build(synsets: list[Synset], seed: int, sizes: dict[str, int] = SIZES
          ) -> dict[str, list[ChoiceExample]]:
    """The three splits, seeded: words assigned to splits, then examples sampled."""
    rng = random.Random(seed)
    first: dict[str, Synset] = {}
    for s in synsets:
        first.setdefault(s.words[0], s)
    words = sorted(first)
    rng.shuffle(words)
    split_of, at = {}, 0
    for split, share in FRACTIONS.items():
        n = round(share * len(words))
        split_of.update(dict.fromkeys(words[at:at + n], split))
        at += n
    split_of.update(dict.fromkeys(words[at:], "test"))
    pools: dict[tuple[str, str], list[Synset]] = {}
    for s in synsets:  # a synset belongs to its first word's split
        pools.setdefault((split_of[s.words[0]], s.pos), []).append(s)
    splits = {}
    for split, size in sizes.items():
        mine = [w for w in words if split_of[w] == split]
        if len(mine) < size:
            raise UserError(f"wordnet-mc: only {len(mine)} {split} words for {size} examples")
        splits[split] = [_example(w, first[w], pools[(split, first[w].pos)], rng)
                         for w in mine[:size]]
    return splits


def _example(word: str, synset: Synset, pool: list[Synset], rng: random.Random
             ) -> ChoiceExample:
    distractors: list[str] = []
    for _ in range(100 * CHOICES):  # random draws: pools are large, clashes are rare
        other = rng.choice(pool)
        if word not in other.words and other.definition != synset.definition \
                and other.definition not in distractors:
            distractors.append(other.definition)
            if len(distractors) == CHOICES - 1:
                break
    else:
        raise UserError(f"wordnet-mc: too few other {synset.pos} glosses for '{word}'")
    label = rng.randrange(CHOICES)
    choices = distractors[:label] + [synset.definition] + distractors[label:]
    context = f"{word}: {synset.examples[0]}" if synset.examples else word
    return ChoiceExample(context, choices, label)


def wordnet_mc(seed: int) -> dict[str, list[ChoiceExample]]:
    from edgebert.sources import resolve_data

    return build(read_synsets(resolve_data("wordnet-base")), seed)


def _default_seed() -> int:
    from edgebert.config import TaskConfig

    return TaskConfig.__dataclass_fields__["seed"].default  # the split seed tasks default to


def held_out_glosses(synsets: list[Synset], seed: int | None = None,
                     sizes: dict[str, int] = SIZES) -> set[str]:
    """Every gloss a dev or test example shows (right answers and distractors): what a
    pretraining or distillation corpus for a chain scored on this task must not hold."""
    splits = build(synsets, _default_seed() if seed is None else seed, sizes)
    return {c for s in ("dev", "test") for ex in splits[s] for c in ex.choices}
