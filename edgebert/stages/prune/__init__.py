"""Pruning: structured (heads, FFN neurons, layers; physically removed) and unstructured
(magnitude, to a target sparsity on a cubic schedule)."""
