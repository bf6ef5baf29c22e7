"""The teacher: fine-tuning a BERT checkpoint (pretraining from scratch comes later)."""
