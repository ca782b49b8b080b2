"""The configure pane: the `RunConfig` fields a user picks, validated as they type.

Validation is the engine's own (`RunConfig.validate()` and its `ConfigError` messages), so the
pane can never accept what `ecs run` would refuse, and the message a user sees here is the one
the CLI prints. `command_line` turns a config back into the `ecs run ...` line that reproduces it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ecs_core.config import (
    ABLATIONS,
    BUDGETS,
    DEVICES,
    PRECISIONS,
    SCOPES,
    ConfigError,
    RunConfig,
)
from ecs_core.registry import DATASETS, MODELS, PRUNERS
from ecs_tui.commands.argv import config_to_args, flag


@dataclass(frozen=True)
class Field:
    """One row of the form: a RunConfig field, its label, and how it is typed in."""

    name: str
    label: str
    kind: type | tuple[str, ...] | dict[str, Any]
    """Choices (a Select): a tuple, or a registry whose names are read when the form is built;
    else int / float / bool / str (`max_batches` is int-or-blank)."""

    def choices(self) -> tuple[str, ...] | None:
        return tuple(self.kind) if isinstance(self.kind, tuple | dict) else None


FIELDS = (
    Field("model", "model", MODELS),
    Field("dataset", "dataset", DATASETS),
    Field("method", "method", PRUNERS),
    Field("scope", "scope", SCOPES),
    Field("budget", "budget", BUDGETS),
    Field("ablate", "ablate", ABLATIONS),
    Field("density", "density", float),
    Field("epochs", "epochs", int),
    Field("warmup_epochs", "warm-up", int),
    Field("score_batches", "score bat", int),
    Field("prune_iterations", "rounds", int),
    Field("prune_fraction", "imp frac", float),
    Field("rewind_epoch", "rewind", int),
    Field("lr", "lr", float),
    Field("batch_size", "batch", int),
    Field("seed", "seed", int),
    Field("width", "width", float),
    Field("bits", "bits", int),
    Field("device", "device", DEVICES),
    Field("precision", "precision", PRECISIONS),
    Field("max_batches", "max batch", int),
    Field("quantize", "quantize", bool),
    Field("tensorboard", "tb logs", str),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)


def parse_value(f: Field, text: str) -> Any:
    """Text typed in a field -> the field's type; a `ConfigError` in the CLI's words if not."""
    text = text.strip()
    if f.name == "max_batches" and text.lower() in ("", "all", "none"):
        return None
    try:
        return f.kind(text)  # type: ignore[operator]
    except ValueError:
        what = "an integer" if f.kind is int else "a number"
        raise ConfigError(f"{flag(f.name)} must be {what}, got {text!r}") from None


def build_config(values: dict[str, Any], base: RunConfig) -> RunConfig:
    """Form values (text, choices, bools) over `base` -> validated RunConfig, or ConfigError."""
    kw: dict[str, Any] = {}
    for f in FIELDS:
        value = values[f.name]
        kw[f.name] = (
            parse_value(f, value) if isinstance(value, str) and f.kind in (int, float) else value
        )
    return dataclasses.replace(base, **kw).validate()


def field_of_error(message: str) -> str | None:
    """Which field a `ConfigError` message is about ("--batch-size must ..." -> batch_size)."""
    m = re.match(r"--([a-z-]+)", message) or re.match(r"unknown (\w+)", message)
    if m is None:
        return None
    name = m.group(1).replace("-", "_")
    return name if name in FIELD_NAMES else None


def command_line(config: RunConfig) -> str:
    """The `ecs run ...` line that reproduces `config`: model, dataset, method, density and seed
    always (the line records the experiment on its own), other options where they differ from
    the defaults. The same converter as `ecs sweep --print-commands` and the DDP launcher."""
    return shlex.join(["ecs", "run", *config_to_args(config)])


def display(value: Any) -> str:
    """A config value as the form shows it (blank for an unlimited max_batches)."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class ConfigurePane(VerticalScroll):
    """The form. Posts `ConfigurePane.Changed` with the validated config, or the error."""

    @dataclass
    class Changed(Message):
        pane: ConfigurePane
        config: RunConfig | None
        error: str | None

    def __init__(self, base: RunConfig, **kw: Any) -> None:
        super().__init__(**kw)
        self.base = base
        self.config: RunConfig | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        for f in FIELDS:
            with Horizontal(classes="field"):
                yield Label(f.label, classes="field-label")
                yield self._widget(f, getattr(self.base, f.name))
        with Vertical(id="cfg-foot"):  # docked: the verdict and buttons stay in view
            yield Static("", id="cfg-error")
            with Horizontal(id="cfg-buttons"):
                yield Button("Start", id="start", variant="success", compact=True)
                yield Button("Stop", id="stop", variant="error", compact=True)
                yield Button("Copy cmd", id="copy", compact=True)

    def _widget(self, f: Field, value: Any) -> Select | Input | Checkbox:
        wid = f"cfg-{f.name}"
        if f.choices() is not None:
            options = [(c, c) for c in f.choices()]
            return Select(options, value=value, allow_blank=False, compact=True, id=wid)
        if f.kind is bool:
            return Checkbox("", value=bool(value), compact=True, id=wid)
        placeholder = "all" if f.name == "max_batches" else ""
        return Input(display(value), placeholder=placeholder, compact=True, id=wid)

    def on_mount(self) -> None:
        self.validate_form()

    def values(self) -> dict[str, Any]:
        """Raw form values: text for inputs, the choice for selects, bool for checkboxes."""
        return {f.name: self.query_one(f"#cfg-{f.name}").value for f in FIELDS}

    def load(self, config: RunConfig) -> None:
        """Show `config` in the form (an opened run's settings: `y` copies, `s` runs it again)."""
        self.base = config
        for f in FIELDS:
            self.set_value(f.name, getattr(config, f.name))
        self.validate_form()

    def load_from(self, path: Path) -> str | None:
        """`load` a run's config.json; the reason it cannot, as one line, or None."""
        try:
            self.load(RunConfig.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, ConfigError) as exc:
            return f"cannot read {path}: {exc}"
        return None

    def set_value(self, name: str, value: Any) -> None:
        """Set one field programmatically (tests, command palette); validation follows."""
        widget = self.query_one(f"#cfg-{name}")
        choices = next(f.choices() for f in FIELDS if f.name == name)
        if isinstance(widget, Select) and choices is not None and value not in choices:
            widget.set_options([(c, c) for c in (*choices, value)])  # e.g. a pkg.mod:factory model
        widget.value = display(value) if isinstance(widget, Input) else value

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event: Message) -> None:
        event.stop()
        self.validate_form()

    def validate_form(self) -> None:
        """Validate the whole form; mark the offending field and show the engine's message."""
        try:
            self.config, self.error = build_config(self.values(), self.base), None
        except ConfigError as exc:
            self.config, self.error = None, str(exc)
        bad = field_of_error(self.error) if self.error else None
        for f in FIELDS:
            self.query_one(f"#cfg-{f.name}").set_class(f.name == bad, "-bad")
        box = self.query_one("#cfg-quantize", Checkbox)
        box.label = "on: k-means + int8" if box.value else "off"  # readable without colour
        note = self.query_one("#cfg-error", Static)
        note.update(f"✗ {self.error}" if self.error else "✓ ready: s starts, y copies the command")
        note.set_class(self.error is not None, "-bad")
        self.post_message(self.Changed(self, self.config, self.error))

    def focus_bad_field(self) -> None:
        """Focus the field the error names (else the first), so Tab goes on from there."""
        bad = field_of_error(self.error) if self.error else None
        self.query_one(f"#cfg-{bad or FIELDS[0].name}").focus()

    def set_running(self, running: bool) -> None:
        """While a run is active the form is read-only and Stop is the live button."""
        for f in FIELDS:
            self.query_one(f"#cfg-{f.name}").disabled = running
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
