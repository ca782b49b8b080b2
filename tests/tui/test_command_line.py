"""The app's copied `ecs run` line records the experiment on its own, in the CLI's spelling."""

from __future__ import annotations

import shlex

from ecs_core.config import RunConfig
from ecs_tui.commands.argv import config_to_args
from ecs_tui.widgets.configure import command_line


def test_copied_line_spells_out_the_experiment_even_at_defaults() -> None:
    line = shlex.split(command_line(RunConfig().validate()))
    assert line[:2] == ["ecs", "run"]
    pairs = dict(zip(line[2::2], line[3::2], strict=False))
    assert pairs == {"--model": "vgg16", "--dataset": "digits", "--method": "ecs",
                     "--density": "0.05", "--seed": "0"}  # fmt: skip


def test_copied_line_is_the_sweeps_line() -> None:
    """One config -> argv converter: the app, `--print-commands` and the DDP launcher agree."""
    config = RunConfig(model="resnet34", epochs=3, lr=0.05, quantize=False).validate()
    assert shlex.split(command_line(config))[2:] == config_to_args(config)


def test_every_config_field_is_an_ecs_run_option_spelled_as_argv_writes_it() -> None:
    """`argv.config_to_args` spells a field `--field-name`; `ecs run` must declare exactly that
    (as its first spelling), or the copied line would not parse."""
    import dataclasses
    import inspect

    from ecs_tui.commands.argv import flag
    from ecs_tui.commands.run import run_command

    params = inspect.signature(run_command, eval_str=True).parameters
    for f in dataclasses.fields(RunConfig):
        if f.name == "extra":
            continue
        assert f.name in params, f"RunConfig.{f.name} is not an `ecs run` option"
        decls = [m.default for m in params[f.name].annotation.__metadata__]
        first = decls[0] if decls and isinstance(decls[0], str) else None
        assert first in (None, flag(f.name)), (f.name, first)


def test_the_copied_line_runs_the_same_config(tmp_path) -> None:
    """Parse the converter's output with `ecs run`'s own options: the config comes back."""
    from typer.main import get_command

    from ecs_tui.cli import app

    config = RunConfig(method="imp", density=0.2, prune_fraction=0.3, rewind_epoch=2,
                       epochs=5, quantize=False, lr=0.05, max_batches=3).validate()  # fmt: skip
    command = get_command(app).commands["run"]  # type: ignore[attr-defined]
    ctx = command.make_context("run", config_to_args(config))
    assert ctx.params["prune_fraction"] == 0.3 and ctx.params["rewind_epoch"] == 2
    assert ctx.params["quantize"] is False and ctx.params["max_batches"] == 3
    assert ctx.params["method"] == "imp" and ctx.params["lr"] == 0.05
