"""Factorized word embeddings (ALBERT's answer to the embedding table's size), as a
compression step for any student: the vocabulary x hidden table becomes a vocabulary x E
lookup followed by an E x hidden projection, initialised from the table's truncated SVD
(the best rank-E approximation), then recovered by the distillation that trains the
student.

    >>> import torch
    >>> table = torch.nn.Embedding(50, 16)
    >>> small = FactorizedEmbedding.from_table(table, 4)
    >>> small(torch.tensor([[1, 2]])).shape
    torch.Size([1, 2, 16])

A model's config records the rank (`factorized_embeddings`); `modeling.from_pretrained`
rebuilds the two factors before it loads the weights. In ONNX the lookup is a Gather
and the projection a MatMul, both INT8 after quantization.
"""

from __future__ import annotations

import torch

from edgebert.errors import UserError


class FactorizedEmbedding(torch.nn.Module):
    def __init__(self, num_embeddings: int, rank: int, hidden: int,
                 padding_idx: int | None = None):
        super().__init__()
        self.small = torch.nn.Embedding(num_embeddings, rank, padding_idx=padding_idx)
        self.up = torch.nn.Linear(rank, hidden, bias=False)

    @classmethod
    def from_table(cls, table: torch.nn.Embedding, rank: int) -> FactorizedEmbedding:
        weight = table.weight.detach().float()
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        new = cls(table.num_embeddings, rank, table.embedding_dim, table.padding_idx)
        new.small.weight.data = (u[:, :rank] * s[:rank]).to(table.weight.dtype)
        new.up.weight.data = vh[:rank].T.contiguous().to(table.weight.dtype)
        return new

    # what code that reads an input embedding asks of it
    @property
    def num_embeddings(self) -> int:
        return self.small.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.up.out_features

    @property
    def padding_idx(self) -> int | None:
        return self.small.padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.up(self.small(input_ids))


def factorize_(model, rank: int) -> dict:
    """Replace `model`'s input embedding by its rank-`rank` factorization, in place;
    returns what the SVD kept (relative Frobenius error, parameters before and after)."""
    table = model.get_input_embeddings()
    if isinstance(table, FactorizedEmbedding):
        raise UserError("--factorize-embeddings: the model's embeddings are factorized "
                        "already")
    if not 0 < rank < table.embedding_dim:
        raise UserError(f"--factorize-embeddings {rank}: must be between 1 and the "
                        f"embedding width {table.embedding_dim} (exclusive)")
    if getattr(model.config, "tie_word_embeddings", False) and \
            getattr(model, "get_output_embeddings", lambda: None)() is not None:
        raise UserError("--factorize-embeddings: the model ties its output layer to the "
                        "embeddings (an MLM head); factorize a task model")
    new = FactorizedEmbedding.from_table(table, rank)
    with torch.no_grad():
        approx = new(torch.arange(table.num_embeddings))
        error = float((approx - table.weight).norm() / table.weight.norm())
    before = table.weight.numel()
    model.set_input_embeddings(new)
    model.config.factorized_embeddings = rank
    return {"rank": rank, "relative_error": error, "params_before": before,
            "params_after": sum(p.numel() for p in new.parameters())}


def rebuild_(model) -> None:
    """Give a model whose config records a factorization the two factors (their values
    come from the checkpoint next)."""
    rank = getattr(model.config, "factorized_embeddings", None)
    table = model.get_input_embeddings()
    if rank and not isinstance(table, FactorizedEmbedding):
        model.set_input_embeddings(FactorizedEmbedding(table.num_embeddings, rank,
                                                       table.embedding_dim, table.padding_idx))
