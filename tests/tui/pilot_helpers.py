"""Helpers the app's pilot tests share (not a test file): wait for a condition, read toasts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot


async def wait_for(pilot: Pilot, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until `cond()` holds (the worker thread runs meanwhile)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def notes(app: Any) -> list[str]:
    """The messages of the app's notifications (toasts), oldest first."""
    return [str(n.message) for n in app._notifications]
