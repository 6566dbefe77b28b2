"""Synthetic traces for demos, tests and benchmarks."""
