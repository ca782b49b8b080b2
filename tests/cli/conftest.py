"""Fixtures for CLI tests: a CliRunner and the tiny-run options every test shares."""

from __future__ import annotations

import pytest

from tests.tiny import tiny_args

TINY = tiny_args(epochs=2, max_batches=2)


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)
