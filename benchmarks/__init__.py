"""Benchmarks on public data with ground truth; results land in ``benchmarks/results``."""
