"""Unlabeled text for distillation: the student matches the teacher's soft targets on it.

Masking / dropping words of training sentences (Tang et al., 2019, "Distilling
task-specific knowledge from BERT into simple neural networks") gives new inputs
near the data, where the teacher's outputs carry most information.
"""

from __future__ import annotations

import random

from edgebert.data.tasks import TextExample
from edgebert.errors import UserError
from edgebert.sources import resolve_data

UNLABELED = -100


def perturb(text: str, rng: random.Random, mask_token: str, p_mask: float = 0.15,
            p_drop: float = 0.1) -> str:
    """>>> perturb("a b c d", random.Random(0), "[MASK]") != "a b c d"
    True
    """
    words = text.split()
    out = []
    for w in words:
        r = rng.random()
        if r < p_mask:
            out.append(mask_token)
        elif r < p_mask + p_drop:
            continue
        else:
            out.append(w)
    result = " ".join(out) or text
    return result if result != text or len(words) < 2 else perturb(text, rng, mask_token)


def augmented(train: list[TextExample], copies: int, mask_token: str, seed: int,
              file: str | None = None) -> list[TextExample]:
    rng = random.Random(seed)
    extra = [TextExample(perturb(ex.text, rng, mask_token), UNLABELED,
                         perturb(ex.text_pair, rng, mask_token) if ex.text_pair else None)
             for _ in range(copies) for ex in train]
    if file:
        path = resolve_data(file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text; re-save it as UTF-8") from None
        extra += [TextExample(ln.strip(), UNLABELED) for ln in lines if ln.strip()]
    return extra
