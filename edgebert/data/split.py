"""Seeded train/dev/test splits, optionally grouped so no group spans two splits."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def split_grouped(items: Sequence[T], seed: int, fractions=(0.8, 0.1, 0.1),
                  group: Callable[[T], Hashable] | None = None) -> dict[str, list[T]]:
    """Split `items` into train/dev/test by whole groups, about `fractions` of the items.

    Groups are shuffled with `seed` and filled into train, then dev, then test,
    so every group lands in exactly one split and the result depends only on
    the items and the seed.

    >>> s = split_grouped(list(range(10)), seed=0)
    >>> sorted(len(v) for v in s.values())
    [1, 1, 8]
    """
    order: dict[Hashable, list[T]] = {}
    for i, item in enumerate(items):
        order.setdefault(group(item) if group else i, []).append(item)
    keys = sorted(order, key=str)
    random.Random(seed).shuffle(keys)
    n = len(items)
    bounds = (fractions[0] * n, (fractions[0] + fractions[1]) * n)
    splits: dict[str, list[T]] = {"train": [], "dev": [], "test": []}
    seen = 0
    for key in keys:
        name = "train" if seen < bounds[0] else "dev" if seen < bounds[1] else "test"
        splits[name].extend(order[key])
        seen += len(order[key])
    return splits
