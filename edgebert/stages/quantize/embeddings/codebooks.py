"""Codebook tuning: the 1-bit word table's k-means entries trained to keep the model's outputs.

At 1 bit a value (a byte per sub-vector of 8) k-means leaves a row error of 0.56 of a row's
norm, and on Rotten Tomatoes the INT8 model lost 1.68 dev points to it (2 bits: 0.32). The
codes stay as k-means gave them; only the codebook entries (hidden / 8 codebooks of 256
entries of 8 values: 98,304 numbers for a 384-wide model) are trained, everything else frozen,
so that the model with the coarse table gives the hidden states and soft targets of the same
model with its full table (self-distillation on the training texts, the best dev kept,
dropout off: the target is one exact function). On Rotten Tomatoes' pruned, trimmed model
(`edgebert quantize --embedding-bits 1 --target x86-avx2`): PyTorch dev 80.98 % -> 82.65 %
(full table 82.97 %), and the INT8 model with it dev 82.57 % / test 81.89 % (FP32 82.97 /
81.81; two more runs: 82.65 / 81.97 and 82.49 / 81.89), against 82.65 % / 81.02 % with the
2-bit table: 3.5 MB instead of 4.6. With dropout on, as in training, the same run reached
only 82.17 % in PyTorch and lost 0.88 dev points.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from edgebert.config import TrainConfig

TUNING = TrainConfig(epochs=2.0, lr=2e-3, weight_decay=0.0, eval_every=100, patience=4,
                     min_examples=0)
"""Two passes at 2e-3 (on Rotten Tomatoes dev rose until step 600 of 640; one pass at 1e-3
with the soft targets alone reached 81.93 %), no decay (the entries are the weights)."""
HIDDEN_MSE = 1.0
"""Weight of the hidden states' mean squared error (every layer) beside the KL of the soft
targets at temperature 2: with two classes the soft targets alone say little per text."""


class CodedEmbedding(torch.nn.Module):
    """The product-quantized word table: row i is codebook entries codes[i], concatenated."""

    def __init__(self, codes: np.ndarray, books: np.ndarray):
        super().__init__()
        parts, k, sub = books.shape
        offsets = torch.arange(parts) * k
        self.register_buffer("index", torch.from_numpy(codes.astype(np.int64)) + offsets)
        self.books = torch.nn.Parameter(torch.from_numpy(
            books.astype(np.float32).reshape(parts * k, sub)))
        self.shape = books.shape

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.books[self.index[ids]].flatten(-2)

    def entries(self) -> np.ndarray:
        return self.books.detach().cpu().numpy().reshape(self.shape)


def tune_codebooks(model, data, codes: np.ndarray, books: np.ndarray, log=print
                   ) -> tuple[np.ndarray, dict]:
    """(the trained codebooks, what was measured) for `model` (PyTorch, its full table)
    reading its words through `codes` and `books`; `data` is the task's task_training.Prepared."""
    from edgebert.losses import soft_kl, view
    from edgebert.predict import INPUTS
    from edgebert.train import pick_device, train

    model.to(pick_device(TUNING))  # the reference runs where train() puts the student
    student = copy.deepcopy(model).eval()
    for p in student.parameters():
        p.requires_grad_(False)
    for m in student.modules():  # the target is the model's exact function: no dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if isinstance(getattr(m, "dropout_prob", None), float):  # transformers' SDPA attention
            m.dropout_prob = 0.0
    coded = CodedEmbedding(codes, books)
    student.set_input_embeddings(coded)
    metric = data.task.metric
    before = data.score(student, "dev")[metric]

    def loss_fn(m, batch: dict) -> dict:
        inputs = {k: batch[k] for k in INPUTS if k in batch}
        with torch.no_grad():
            t = model(**inputs, output_hidden_states=True)
        s = m(**inputs, output_hidden_states=True)
        first = s.hidden_states[0]
        mask = inputs["attention_mask"].reshape(*first.shape[:2], 1).to(first.dtype)
        mse = sum((((a - b) ** 2) * mask).sum() for a, b in
                  zip(s.hidden_states, t.hidden_states)) / (mask.sum() * first.shape[-1])
        loss = HIDDEN_MSE * mse
        if getattr(s, "start_logits", None) is None:  # QA's are over positions, not classes
            loss = loss + soft_kl(view(s)["logits"], view(t)["logits"], 2.0)
        return {"loss": loss}

    result = train(student, data.encoded["train"].features, loss_fn, TUNING,
                   collate=data.collate, evaluate=lambda: data.score(student, "dev"),
                   metric=metric, desc="codebooks")
    after = data.score(student, "dev")[metric]
    log(f"1-bit word table: codebooks tuned in {result.steps} steps, PyTorch dev {metric} "
        f"{before:.4f} -> {after:.4f}")
    return coded.entries(), {"steps": result.steps, "best_step": result.best_step,
                             "seconds": round(result.seconds, 1),
                             "torch_dev_before": before, "torch_dev_after": after}
