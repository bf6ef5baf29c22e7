"""The README stays a short page for users, and no text a user reads names the round of
work a figure came from: what a thing is lives apart from how it was found (the reasons
for defaults are in docs/defaults.md, the history in git and CHANGELOG.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = "python3 -m venv .venv && .venv/bin/pip install -e '.[full]' -c constraints/pinned.txt && .venv/bin/edgebert compress"
TESTS = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' -c constraints/pinned.txt && .venv/bin/python -m pytest"

ROUND = re.compile(r"\b[Ss]essions? \d+|\b[Ss]ession_?\d+|(?<=[_-])s\d\d\b")
"""A numbered round of work: the word "session" followed by a number (spaced, plural or
joined), or an `_s` and two digits in a name. Not an int32 type ("s32"), a flag or a word."""


def scanned() -> list[Path]:
    """Everything a user reads: the package (code, help texts, recipes), the benchmark
    scripts, the README, the changelog and the docs site."""
    files = [p for p in (ROOT / "edgebert").rglob("*") if p.suffix in (".py", ".yaml")]
    files += sorted((ROOT / "benchmarks").glob("*.py"))
    files += [p for p in (ROOT / "recipes").rglob("*") if p.is_file()]
    files += [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "mkdocs.yml"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    return files


def result_files() -> list[str]:
    """Names of committed results files, longest first: text may cite a file by its name
    until the results store renames it."""
    return sorted((p.name for p in (ROOT / "benchmarks" / "results").rglob("*") if p.is_file()),
                  key=len, reverse=True)


def rounds_in(text: str, names: list[str]) -> list[str]:
    for name in names:
        text = text.replace(name, "")
    return [m.group(0) for m in ROUND.finditer(text)]


def test_the_pattern_catches_round_numbers_and_nothing_else():
    word = "sess" + "ion"  # built, so this file names no round itself
    names = [f"int8_variants_xeon_s{29}.json"]
    assert rounds_in(f"as measured in {word} {19} ({word} {28}), {word}s {12} to 16", []) == \
        [f"{word} 19", f"{word} 28", f"{word}s 12"]
    assert rounds_in(f"peers_xeon_s{28} and {word}{22}_experiments", []) == \
        ["s28", f"{word}22"]
    assert rounds_in(f"u8 x s8 -> s32, s16 sums, avx512_vnni, 128 tokens, this {word}", []) == []
    assert rounds_in(f"see `int8_variants_xeon_s{29}.json`", names) == []


def test_no_round_numbers_in_what_users_read():
    names = result_files()
    found = {str(p.relative_to(ROOT)): hits for p in scanned()
             if (hits := rounds_in(p.read_text(errors="replace"), names))}
    assert not found, found


def test_readme_is_short_and_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert SETUP in readme and TESTS in readme  # CI's contract: .ci/run runs the second
    assert TESTS in (ROOT / ".ci" / "run").read_text()
