"""A run option is one declaration on its `RunConfig` field: add a throwaway field at test time
and find it in `ecs run --help`, the app's form, the copied command line, `ecs sweep`'s parsing
and `validate`'s refusal of a bad value; and `ecs run --help` and the form say the same words."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecs_core.config import ConfigError, RunConfig
from ecs_core.options import option, options
from ecs_tui.commands import run
from ecs_tui.commands.argv import config_to_args
from ecs_tui.commands.options import with_field_options

TILES = "Tiles per throwaway: a field added at test time, declared once."
Throwaway = dataclasses.make_dataclass(
    "Throwaway",
    [("tiles", int, option(4, TILES, aliases=("--tile",), label="tiles", bounds=">= 1"))],
    bases=(RunConfig,),
    frozen=True,
)


@pytest.fixture
def throwaway(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`ecs run` (and so `ecs sweep`) made from the config class with the extra field."""
    monkeypatch.setattr(run, "RunConfig", Throwaway)
    with_field_options(run.run_command, Throwaway)
    try:
        yield
    finally:
        with_field_options(run.run_command, RunConfig)


def words(text: str) -> str:
    return " ".join(text.split())


def invoke(args: list[str]):
    from ecs_tui.cli import app

    return CliRunner().invoke(app, args)


def test_the_field_is_an_ecs_run_option_with_its_help(throwaway: None) -> None:
    out = words(invoke(["run", "--help"]).output)
    assert f"--tiles, --tile <int> {TILES} [default: 4]" in out
    assert "--tiles" not in words(invoke(["sweep", "--help"]).output)  # sweep's own options


def test_validate_refuses_a_bad_value_as_declared(throwaway: None) -> None:
    with pytest.raises(ConfigError, match=r"^--tiles must be >= 1, got 0$"):
        Throwaway(tiles=0).validate()
    result = invoke(["run", "--tile", "0", "--dataset", "digits"])
    assert result.exit_code == 2
    assert "--tiles must be >= 1, got 0" in result.output


def test_the_copied_line_and_sweep_carry_it(throwaway: None, tmp_path: Path) -> None:
    assert config_to_args(Throwaway(tiles=7))[-2:] == ["--tiles", "7"]
    assert "--tiles" not in config_to_args(Throwaway())  # at its default: left out
    args = ["sweep", "--print-commands", "--methods", "snip,ecs", "--tiles", "7",
            "--runs-dir", str(tmp_path)]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and all("--tiles 7 --run-dir" in line for line in lines), lines


def test_without_the_field_ecs_run_refuses_it() -> None:
    """The fixture is what adds it: the test above could fail."""
    result = invoke(["run", "--tiles", "7"])
    assert result.exit_code == 2 and "No such option: --tiles" in result.output


@pytest.mark.asyncio
async def test_the_form_has_a_row_for_it() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Input, Label

    from ecs_tui.widgets.configure import ConfigurePane, command_line

    class Form(App):
        def compose(self) -> ComposeResult:
            yield ConfigurePane(Throwaway(width=0.125, epochs=1))

    app = Form()
    async with app.run_test(size=(100, 60)) as pilot:
        pane = app.query_one(ConfigurePane)
        row = app.query_one("#cfg-tiles", Input)
        label = row.parent.query_one(Label)
        assert str(label.render()) == "tiles" and str(label.tooltip) == TILES
        row.value = "0"
        await pilot.pause()
        assert pane.error == "--tiles must be >= 1, got 0" and row.has_class("-bad")
        row.value = "7"
        await pilot.pause()
        assert pane.config is not None and pane.config.tiles == 7
        assert command_line(pane.config).endswith("--tiles 7")


def letters(text: str) -> str:
    """`text` without its white space (click wraps help lines, breaking words at hyphens)."""
    return "".join(text.split())


def help_entries(text: str) -> dict[str, str]:
    """`ecs run --help`'s options -> their help (before `[default: ...]`), as `letters`."""
    body = text.split("Options:", 1)[1]
    entries: dict[str, str] = {}
    for m in re.finditer(r"^  (--[a-z-]+)[^\n]*?(?:  +|\n +)(.*?)(?=^  -)", body, re.M | re.S):
        entries[m.group(1)] = re.sub(r"\[default:[^\]]*\]$", "", letters(m.group(2)))
    return entries


@pytest.mark.asyncio
async def test_ecs_run_help_and_the_form_say_the_same() -> None:
    """Every row of the form is an `ecs run` option, its tooltip the option's help, word for
    word; and every option the form shows has a label."""
    from textual.widgets import Label

    from ecs_tui.app import EcsApp
    from ecs_tui.widgets.configure import ORDER, ConfigurePane

    shown = help_entries(invoke(["run", "--help"]).output)
    app = EcsApp(config=RunConfig(width=0.125, epochs=1, runs_dir="runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = app.query_one(ConfigurePane)
        rows = {f.name: f for f in pane.fields}
        labelled = {f.name for f, o in options(RunConfig) if o.label}
        assert set(rows) == labelled and len(rows) >= 20
        assert set(ORDER) <= labelled  # it only places rows
        for name, f in rows.items():
            flag = "--" + name.replace("_", "-")
            label = app.query_one(f"#cfg-{name}").parent.query_one(Label)
            assert str(label.render()) == f.label
            assert shown[flag] == letters(str(label.tooltip)), flag
