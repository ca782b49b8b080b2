"""Exit codes of every `ecs` command, and `fail`: one line on stderr, then that code."""

from __future__ import annotations

import typer

EXIT_FAILED = 1
"""The run (or a check, e.g. `ecs eval --expect`) failed after it started."""
EXIT_BAD_INPUT = 2
"""Bad options or unreadable input: nothing was started or written."""
EXIT_BUSY = 3
"""`ecs sweep`: every cell this process could run is done; others are another process's now."""
EXIT_STOPPED = 130
"""Stopped by Ctrl-C / SIGTERM (resumable), as a shell reports SIGINT."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print `error: message` to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
