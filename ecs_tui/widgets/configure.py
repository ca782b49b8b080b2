"""The configure pane: a row per `RunConfig` option declared with a form `label` (its type,
choices and help, as the row's tooltip, come from the same declaration), validated as they type.

Validation is the engine's own (`RunConfig.validate()` and its `ConfigError` messages), so the
pane can never accept what `ecs run` would refuse, and the message a user sees here is the one
the CLI prints. `command_line` turns a config back into the `ecs run ...` line that reproduces it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ecs_core.config import BEFORE_OPTIONS, ConfigError, RunConfig
from ecs_core.options import Option, options
from ecs_core.registry import PRUNERS
from ecs_core.safeio import read_json
from ecs_tui.commands.argv import config_to_args, flag

ORDER = (
    "model", "dataset", "method", "scope", "distribution", "distribution_from", "keep_dense",
    "budget", "ablate", "density", "epochs", "warmup_epochs", "score_batches", "score_bn",
    "grasp_samples", "grasp_linear", "prune_iterations", "prune_fraction", "rewind_epoch",
    "imp_optimizer", "dst_interval", "dst_drop", "dst_end", "lr", "batch_size",
    "seed", "width", "bits", "device", "precision", "max_batches",
    "quantize", "tensorboard",
)  # fmt: skip
"""Where the rows stand, each method's own beside the rows they qualify; an option given a
`label` and not named here comes last."""
DYNAMIC = ("dst_interval", "dst_drop", "dst_end")
"""Rows shown only for a method that regrows its mask during training (SET, RigL)."""
SPREAD = ("distribution", "distribution_from")
"""Rows shown only for a method that prunes (not for the dense run)."""


def applies(name: str, method: str) -> bool:
    """Whether the row `name` matters for `method` (the form hides it otherwise; its value,
    the default unless changed, still goes into the config, where `validate` puts a choice for
    another method back to its default)."""
    spec = PRUNERS.get(method)
    if name in DYNAMIC:
        return spec is not None and spec.grow != ""
    prunes = spec is None or spec.when != "never"
    if name in SPREAD:
        return prunes
    if name == "keep_dense":  # SET and RigL move weights within every layer
        return prunes and (spec is None or spec.grow == "")
    if name == "score_bn":
        return spec is None or spec.score_bn
    if name in BEFORE_OPTIONS and BEFORE_OPTIONS[name][0]:
        return method == BEFORE_OPTIONS[name][0]
    return True


@dataclass(frozen=True)
class Field:
    """One row of the form: an option field of the config, as its declaration says."""

    name: str
    kind: type
    """int / float / bool / str (an optional number: its type, or blank)."""
    option: Option

    @property
    def label(self) -> str:
        return self.option.label

    def choices(self) -> tuple[str, ...] | None:
        """The valid names (a registry's, as registered now), or None: typed in."""
        return tuple(self.option.choices) if self.option.choices is not None else None


@functools.cache
def form_fields(config_class: type = RunConfig) -> tuple[Field, ...]:
    """The rows: every option field with a form label, in `ORDER`."""
    hints = typing.get_type_hints(config_class)
    rows = [
        Field(f.name, _base_type(hints[f.name]), o) for f, o in options(config_class) if o.label
    ]
    place = {name: i for i, name in enumerate(ORDER)}
    return tuple(sorted(rows, key=lambda r: place.get(r.name, len(ORDER))))


def _base_type(hint: Any) -> type:
    """`int | None` -> int; a plain type as it is."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def parse_value(f: Field, text: str) -> Any:
    """Text typed in a field -> the field's type; a `ConfigError` in the CLI's words if not."""
    text = text.strip()
    if f.option.blank and text.lower() in ("", f.option.blank, "none"):
        return None
    try:
        return f.kind(text)
    except ValueError:
        what = "an integer" if f.kind is int else "a number"
        raise ConfigError(f"{flag(f.name)} must be {what}, got {text!r}") from None


def build_config(values: dict[str, Any], base: RunConfig) -> RunConfig:
    """Form values (text, choices, bools) over `base` -> validated RunConfig, or ConfigError."""
    kw: dict[str, Any] = {}
    for f in form_fields(type(base)):
        value = values[f.name]
        kw[f.name] = (
            parse_value(f, value) if isinstance(value, str) and f.kind in (int, float) else value
        )
    return dataclasses.replace(base, **kw).validate()


def field_of_error(message: str, names: tuple[str, ...]) -> str | None:
    """Which of `names` a `ConfigError` message is about ("--batch-size must ..." ->
    batch_size)."""
    m = re.match(r"--([a-z-]+)", message) or re.match(r"unknown (\w+)", message)
    if m is None:
        return None
    name = m.group(1).replace("-", "_")
    return name if name in names else None


def command_line(config: RunConfig) -> str:
    """The `ecs run ...` line that reproduces `config`: model, dataset, method, density and seed
    always (the line records the experiment on its own), other options where they differ from
    the defaults. The same converter as `ecs sweep --print-commands` and the DDP launcher."""
    return shlex.join(["ecs", "run", *config_to_args(config)])


def display(value: Any) -> str:
    """A config value as the form shows it (blank for an unset optional number)."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class ConfigurePane(Vertical):
    """The form: a row per labelled option of `base`'s config class; `config` is the validated
    config, or None and `error` says why.

    The rows scroll in their own box and the verdict and buttons sit below it, outside: a row
    under a dock inside the scroll box counted as on screen, so Tab left the focused row hidden
    at 80x24, and Tab visited the buttons midway (Textual orders focus by position)."""

    def __init__(self, base: RunConfig, **kw: Any) -> None:
        super().__init__(**kw)
        self.base = base
        self.fields = form_fields(type(base))
        self.config: RunConfig | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="cfg-fields"):
            for f in self.fields:
                with Horizontal(classes="field"):
                    label = Label(f.label, classes="field-label")
                    label.tooltip = Content(f.option.describe())  # the words of `ecs run --help`
                    yield label
                    yield self._widget(f, getattr(self.base, f.name))
        with Vertical(id="cfg-foot"):  # below the rows: the verdict and buttons stay in view
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
        return Input(display(value), placeholder=f.option.blank, compact=True, id=wid)

    def on_mount(self) -> None:
        self.validate_form()

    def values(self) -> dict[str, Any]:
        """Raw form values: text for inputs, the choice for selects, bool for checkboxes."""
        return {f.name: self.query_one(f"#cfg-{f.name}").value for f in self.fields}

    def load(self, config: RunConfig) -> None:
        """Show `config` in the form (an opened run's settings: `y` copies, `s` runs it again)."""
        self.base = config
        for f in self.fields:
            self.set_value(f.name, getattr(config, f.name))
        self.validate_form()

    def load_from(self, path: Path) -> str | None:
        """`load` a run's config.json; the reason it cannot, as one line, or None."""
        try:
            self.load(RunConfig.from_dict(read_json(path)))
        except (OSError, ValueError, ConfigError) as exc:
            return f"cannot read {path}: {exc}"
        return None

    def set_value(self, name: str, value: Any) -> None:
        """Set one field programmatically (tests, command palette); validation follows."""
        widget = self.query_one(f"#cfg-{name}")
        choices = next(f.choices() for f in self.fields if f.name == name)
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
        bad = self._bad_field()
        method = self.values()["method"]
        for f in self.fields:
            widget = self.query_one(f"#cfg-{f.name}")
            widget.set_class(f.name == bad, "-bad")
            widget.parent.display = applies(f.name, method) or f.name == bad
        box = self.query_one("#cfg-quantize", Checkbox)
        box.label = "on: k-means + int8" if box.value else "off"  # readable without colour
        note = self.query_one("#cfg-error", Static)
        note.update(f"✗ {self.error}" if self.error else "✓ ready: s starts, y copies the command")
        note.set_class(self.error is not None, "-bad")

    def _bad_field(self) -> str | None:
        names = tuple(f.name for f in self.fields)
        return field_of_error(self.error, names) if self.error else None

    def focus_bad_field(self) -> None:
        """Focus the field the error names (else the first), so Tab goes on from there."""
        self.query_one(f"#cfg-{self._bad_field() or self.fields[0].name}").focus()

    def set_running(self, running: bool) -> None:
        """While a run is active the form is read-only and Stop is the live button."""
        for f in self.fields:
            self.query_one(f"#cfg-{f.name}").disabled = running
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
