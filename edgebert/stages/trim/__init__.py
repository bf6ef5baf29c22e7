"""The trim-vocab stage: a model's vocabulary cut to the pieces a domain uses (edgebert.vocab)."""
