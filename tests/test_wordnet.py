"""The wordnet-mc task, built from a tiny WordNet database in WordNet's own format."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebert.data.wordnet import FILES, build, held_out_glosses, read_synsets
from edgebert.errors import UserError

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by\n"


def tiny_wordnet(root: Path, per_pos: int = 60) -> Path:
    """`per_pos` synsets per part of speech; every third has an example sentence, every
    fifth a second word (a synonym)."""
    root.mkdir()
    for pos, name in FILES.items():
        lines = [HEADER]
        for i in range(per_pos):
            words = [f"{pos}word_{i}", "0"] + ([f"{pos}syn{i}", "0"] if i % 5 == 0 else [])
            example = f'; "the {pos}word {i} in a sentence"' if i % 3 == 0 else ""
            lines.append(f"{i:08d} 03 {pos} {len(words) // 2:02x} {' '.join(words)} 000 | "
                         f"definition number {i} of {pos}{example}  \n")
        (root / name).write_text("".join(lines))
    return root


SIZES = {"train": 12, "dev": 4, "test": 4}


def test_reads_words_definitions_and_examples(tmp_path):
    synsets = read_synsets(tiny_wordnet(tmp_path / "wn"))
    assert len(synsets) == 4 * 60
    s = synsets[0]
    assert s.words == ("nword 0", "nsyn0") and s.definition == "definition number 0 of n"
    assert s.examples == ("the nword 0 in a sentence",)


def test_splits_hold_each_word_and_gloss_once_and_four_choices(tmp_path):
    synsets = read_synsets(tiny_wordnet(tmp_path / "wn"))
    splits = build(synsets, seed=13, sizes=SIZES)
    assert {k: len(v) for k, v in splits.items()} == SIZES
    words = {s: {ex.context.split(":")[0] for ex in v} for s, v in splits.items()}
    glosses = {s: {c for ex in v for c in ex.choices} for s, v in splits.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not words[a] & words[b] and not glosses[a] & glosses[b]
    by_word = {s.words[0]: s for s in synsets}
    for ex in splits["train"] + splits["dev"]:
        word = ex.context.split(":")[0]
        assert len(ex.choices) == 4 and len(set(ex.choices)) == 4
        assert ex.choices[ex.label] == by_word[word].definition
        pos = by_word[word].pos
        assert all(c.endswith(f"of {pos}") for c in ex.choices)  # distractors: same POS
        if by_word[word].examples:
            assert ex.context == f"{word}: {by_word[word].examples[0]}"
    assert build(synsets, seed=13, sizes=SIZES) == splits
    assert build(synsets, seed=14, sizes=SIZES) != splits
    assert {ex.label for v in splits.values() for ex in v} == {0, 1, 2, 3}


def test_held_out_glosses_are_the_dev_and_test_ones(tmp_path):
    synsets = read_synsets(tiny_wordnet(tmp_path / "wn"))
    held = held_out_glosses(synsets, seed=13, sizes=SIZES)
    splits = build(synsets, seed=13, sizes=SIZES)
    assert held == {c for s in ("dev", "test") for ex in splits[s] for c in ex.choices}


def test_too_few_words_and_missing_files_are_refused(tmp_path):
    synsets = read_synsets(tiny_wordnet(tmp_path / "wn", per_pos=3))
    with pytest.raises(UserError, match="only"):
        build(synsets, seed=13, sizes=SIZES)
    (tmp_path / "wn" / "data.adv").unlink()
    with pytest.raises(UserError, match="data.adv: missing"):
        read_synsets(tmp_path / "wn")
