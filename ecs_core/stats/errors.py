"""The one error every stats reader raises (torch-free, so listing runs never loads torch)."""

from __future__ import annotations


class StatsError(ValueError):
    """A view cannot be computed from what the run directory holds; the message says why."""
