"""Task kinds: each kind of head declares, once, everything that depends on its data's
shape (see `base.Kind`). Stages ask `kind(name)` instead of branching on the name.
Torch-free: the runtime imports it.

Adding a kind is a module here (a `Kind` subclass and its example type), a line in
KINDS below, and its name in `config.KindName`.
"""

from __future__ import annotations

from edgebert.errors import UserError
from edgebert.kinds.base import Kind
from edgebert.kinds.choice import ChoiceExample, MultipleChoice
from edgebert.kinds.sequence import Classification, Regression, TextExample
from edgebert.kinds.spans import QAExample, Spans
from edgebert.kinds.tokens import TokenExample, TokenTags

SEQUENCE = "AutoModelForSequenceClassification"

KINDS: dict[str, Kind] = {k.name: k for k in (
    Classification("classification", SEQUENCE, "accuracy", ("text", "label"), augment=True,
                   text_graph="labels", tiebreak="log_loss", hard_loss="ce"),
    Classification("pair", SEQUENCE, "accuracy", ("text", "text_pair", "label"), augment=True,
                   text_graph="labels", tiebreak="log_loss", hard_loss="ce"),
    Regression("regression", SEQUENCE, "pearson", ("text", "label"), top1=False,
               regression=True, augment=True, text_graph="value", tiebreak="mse",
               soft_loss="mse", hard_loss="mse"),
    # a tag per token: many labels per example, entities rare among them (WNUT's teacher:
    # dev entity F1 0.06 after 3 epochs, 0.41 after 6; the benchmark store's teacher rows, `wnut-ner epochs/*`)
    TokenTags("ner", "AutoModelForTokenClassification", "entity_f1", ("tokens", "tags"),
              per_token=True, text_graph="tags", max_auto_epochs=10.0, soft_loss="kl_tokens"),
    Spans("qa", "AutoModelForQuestionAnswering", "f1", ("question", "context", "answers"),
          outputs=("start_logits", "end_logits"), per_token=True, served=False, windows=True,
          soft_loss="kl_positions"),
    MultipleChoice("multiple_choice", "AutoModelForMultipleChoice", "accuracy",
                   ("context", "choices", "label"), truncation="only_first",
                   tiebreak="log_loss"),
)}

ROLES = sorted({role for k in KINDS.values() for role in k.roles + k.optional_roles})
"""Every role a --columns mapping may name."""

__all__ = ["KINDS", "ROLES", "ChoiceExample", "Kind", "QAExample", "TextExample",
           "TokenExample", "kind"]


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"task kind '{name}' is not one of {', '.join(KINDS)}") from None
