"""Bundles: a model artifact packed with its tokenizer and a manifest for `edgebert.runtime`,
which apps embed without torch."""
