"""Fixtures for the benchmark tests: a tiny batch source on the CPU.

`bench` is a top-level folder, not an installed package (`python -m bench` runs from the
repository root), so the root goes on sys.path for these tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from ecs_core.data import load_dataset, make_batches
from ecs_core.data.loader import Batches

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def train_batches() -> Callable[..., Batches]:
    """Factory for 2 augmented digits batches of 16 on the CPU."""

    def make(batch_size: int = 16, max_batches: int = 2) -> Batches:
        d = load_dataset("digits")
        return make_batches(
            d.train_x, d.train_y, d.mean, d.std, batch_size, True, d.flip, torch.device("cpu"),
            max_batches,
        )  # fmt: skip

    return make


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, restored after: on a shared 2-core machine two threads mostly wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
