"""Benchmarks that print ratios against reference implementations: `python -m bench`.

Each module exposes `rows(quick: bool = False) -> list[dict]` (see `bench.common` for the
keys); `bench.__main__` runs them all, prints one table and writes `bench/RESULTS.md`.
Benchmarks are not tests: nothing here asserts a time.
"""
