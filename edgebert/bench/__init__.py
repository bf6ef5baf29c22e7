"""Latency measurement: each artifact in its own process, processes alternated."""
