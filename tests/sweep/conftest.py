"""Fixtures for the sweep and DDP tests: the tiny-run options, a CLI runner, a grid file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny import tiny_args

# A cell trains one batch of one epoch of a 1/8-width VGG16 on the embedded digits data.
TINY = tiny_args(device="cpu")
GRID_2x2x2 = ["--methods", "snip,ecs", "--densities", "0.2,0.1", "--seeds", "0,1"]


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture
def grid_2x2x2() -> list[str]:
    return list(GRID_2x2x2)


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    path = tmp_path / "table.toml"
    path.write_text(
        'name = "table1"\n'
        "[grid]\n"
        'methods = ["snip", "random"]\n'
        "densities = [0.2, 0.05]\n"
        "seeds = [0, 1]\n"
        "[run]\n"
        "width = 0.25\n"
        "epochs = 5\n"
        "quantize = false\n"
    )
    return path
