"""Asking before a run's files make the app run code: the confirm dialog that names the module.

A run whose model is `package.module:factory` rebuilds it by importing that module. The name came
from the run's files (someone else's, maybe), so the Activations view and `e` (export) ask first
(`ecs_core.trust`); a yes trusts that module for the rest of this app's life, and reaches the
processes the app starts (`trust.child_env`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecs_core import trust
from ecs_tui.screens.confirm import ConfirmScreen


def find_untrusted(exc: BaseException | None) -> trust.UntrustedModel | None:
    """The `UntrustedModel` behind `exc` (a view's error wraps it), or None."""
    while exc is not None:
        if isinstance(exc, trust.UntrustedModel):
            return exc
        exc = exc.__cause__
    return None


def untrusted_run(path: Path) -> trust.UntrustedModel | None:
    """The refusal that rebuilding the model of the run at `path` would meet, or None."""
    from ecs_core.safeio import read_json

    source = path / "config.json"
    try:
        config = read_json(source)
    except (OSError, ValueError, RecursionError):
        return None  # the command says what is wrong with the file
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, str):
        return None  # no model of anyone's own: the command says what is wrong with the file
    try:
        trust.check(model, str(source))
    except trust.UntrustedModel as exc:
        return exc
    return None


def question(exc: trust.UntrustedModel) -> str:
    return (
        f"{exc.source} names the model {exc.spec}.\n"
        f"Rebuilding it imports module {exc.module} and runs its code, which came with the "
        "run's files, not from you.\n"
        f"Trust {exc.module} and run it? (same as {trust.ENV}={exc.module})"
    )


def ask_first(app: Any, path: Path, then: Callable[[], None]) -> bool:
    """True when the run at `path` names a module not trusted yet: the dialog is up, and a yes
    calls `then`; False when nothing needs asking."""
    exc = untrusted_run(path)
    if exc is not None:
        ask_trust(app, exc, then)
    return exc is not None


def child_environ() -> dict[str, str]:
    """The environment for a command the app starts: its own, plus what the user trusted here."""
    import os

    return {**os.environ, **trust.child_env()}


def ask_trust(app: Any, exc: trust.UntrustedModel, then: Callable[[], None]) -> None:
    """Ask (UI thread); on yes trust `exc.module` for this process and call `then`."""

    def answer(yes: bool | None) -> None:
        if yes:
            trust.allow(exc.module)
            then()
        else:
            app.notify(f"{exc.module} not imported; nothing of it ran", timeout=5)

    app.push_screen(ConfirmScreen(question(exc), f"Trust {exc.module}"), answer)
