"""Benchmarks: `make bench` (python -m bench). Every figure is a ratio measured in one run."""
