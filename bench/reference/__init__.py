"""Faithful re-implementations of the original project's slow code, kept as benchmark references.

They reproduce what the original did (and how it did it), not what it should have done; the
benchmarks time them in the same process as ours and check that both give the same answer.
"""
