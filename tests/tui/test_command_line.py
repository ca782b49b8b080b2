"""The app's copied `ecs run` line records the experiment on its own, in the CLI's spelling."""

from __future__ import annotations

import shlex

from ecs_core.config import RunConfig
from ecs_tui.commands.sweep import config_to_args
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
