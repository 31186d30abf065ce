"""Benchmarks against the local stack; run one with ``python -m bench.<name>``."""
