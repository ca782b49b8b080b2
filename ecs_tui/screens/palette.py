"""The app's entries in the command palette (ctrl+p): every action and every view, by name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from textual.app import SystemCommand


def palette_commands(app: Any, views: Sequence[Any]) -> Iterable[SystemCommand]:
    """Commands for `App.get_system_commands`; each names its key, so the palette teaches them."""
    yield SystemCommand("Start run", "Start the configured run (s)", app.action_start)
    yield SystemCommand("Stop run", "Stop at the next batch boundary (x)", app.action_stop)
    yield SystemCommand(
        "Copy ecs run command", "The headless command line for this config (y)",
        app.action_copy_command,
    )  # fmt: skip
    yield SystemCommand("Toggle configure pane", "Show or hide it (c)", app.action_toggle_configure)
    yield SystemCommand("Help", "Every key (?)", app.action_help)
    for v in views:
        yield SystemCommand(
            f"View: {v.title}", f"{v.help} ({v.key})", lambda n=v.name: app.action_show_view(n)
        )
