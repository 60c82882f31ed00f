"""Benchmark scripts: ratios measured in one process (run ``python -m benchmarks.NAME --help``)."""
