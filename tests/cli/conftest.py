"""Fixtures for CLI tests: a CliRunner and the tiny-run options every test shares."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

TINY = ["--width", "0.125", "--epochs", "2", "--max-batches", "2", "--batch-size", "32",
        "--no-quantize"]  # fmt: skip


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)
