"""The `ecs` command line (Typer). Thin: it builds a RunConfig and hands it to the engine.

Nothing here imports torch at module level, so `ecs --help` answers at once; commands import
the engine when they run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ecs_tui import commands

app = typer.Typer(
    name="ecs",
    help="Prune (SNIP, ECS), quantize and inspect CNNs. Bare `ecs` opens the terminal app.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """Bare `ecs` opens the app; `ecs COMMAND --help` documents each command."""
    if ctx.invoked_subcommand is None:
        _launch_tui(None, None)


def _launch_tui(run_dir: Path | None, watch: Path | None, runs: Path | None = None) -> None:
    from ecs_tui.app import run_app
    from ecs_tui.guard import guarded

    code = guarded(lambda: run_app(run_dir=run_dir, watch=watch, runs=runs))
    if code:
        raise typer.Exit(code)


commands.register(app)


def main() -> None:
    """Console script `ecs`: a path with a name longer than the file system allows (a 300-char
    run directory) is one line wherever a command meets it, not an OSError traceback."""
    import errno

    try:
        app()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        where = exc.filename or "a path"
        typer.echo(f"error: {where}: a name in this path is longer than the file system allows "
                   "(255 bytes); use a shorter one", err=True)  # fmt: skip
        raise SystemExit(2) from None


tui = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@tui.command()
def _tui(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory to open, or a folder of runs (or a sweep) to list.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        Path | None,
        typer.Option(
            help="Attach to a run directory that `ecs run` is writing.", show_default=False
        ),
    ] = None,
) -> None:
    """Open the ecs-tui terminal app."""
    if watch is not None and not (watch / "config.json").is_file():
        typer.echo(f"error: {watch} is not a run directory (no config.json)", err=True)
        raise typer.Exit(2)
    if run_dir is not None and not (run_dir / "config.json").is_file():
        if not run_dir.is_dir():
            what = "does not exist" if not run_dir.exists() else "is not a directory"
            typer.echo(
                f"error: {run_dir} {what}; give a run directory or a folder of runs", err=True
            )
            raise typer.Exit(2)
        _launch_tui(None, watch, runs=run_dir)  # a folder of runs: the Runs tab lists it
        return
    _launch_tui(run_dir, watch)


def tui_main() -> None:
    """Console script `ecs-tui`."""
    tui()


if __name__ == "__main__":  # `python -m ecs_tui.cli` (torchrun uses this form)
    sys.exit(main())
