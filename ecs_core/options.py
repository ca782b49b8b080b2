"""How a run option is declared: once, on its `RunConfig` field, as `option(default, help, ...)`.

The field's metadata (an `Option`) holds everything the front ends and the checks need: the
help text (the field's doc, shown by `ecs run --help` and as the form's tooltip), other
spellings of its flag, the form's label, the valid names or the range of values. Read from it:
`ecs run`'s options (ecs_tui/commands/options.py), the form's rows (widgets/configure.py), the
per-field checks of `RunConfig.validate()` and the command line that reproduces a config
(commands/argv.py). A field without it (`extra`) is no option.

Torch-free and typer-free: the config imports it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_core.names import ConfigError, canonical_name

FLOAT32_MAX = 3.4028234663852886e38
"""Rates and factors become float32 tensors in the optimizer: a float option larger than this
would overflow, so every float option is refused past it (and when not finite)."""


@dataclass(frozen=True)
class Option:
    """What a `RunConfig` field is as an option (see `option`)."""

    help: str
    """What it does: `ecs run --help` and the form's tooltip. `{choices}` lists the choices."""
    aliases: tuple[str, ...] = ()
    """Other spellings of the flag (`--retain` for `--density`); `--field-name` comes first."""
    label: str = ""
    """The form's row label; "" keeps the option off the form."""
    choices: Mapping[str, Any] | tuple[str, ...] | None = None
    """The valid names: a tuple, or a registry read when used (a registered pruner is offered)."""
    noun: str = ""
    """An unknown name is "unknown {noun} ..." (default: the field's name)."""
    parse: Callable[[Any], Any] | None = None
    """Value -> its canonical form, or `ConfigError` (default: the canonical name of a choice)."""
    bounds: str = ""
    """The valid values of a number, as the message says them: `(0, 1]`, `>= 1`, `> 0`, `1..8`."""
    kind: str = ""
    """What a value must be, said before its bounds: "a 64-bit integer" (-> "must be a 64-bit
    integer, in 0..9")."""
    blank: str = ""
    """An optional number (default None): the word the form shows for "unset" ("all")."""

    def describe(self) -> str:
        """The help text, its `{choices}` filled in from the registry as it is now."""
        return self.help.replace("{choices}", " | ".join(self.choices or ()))

    def check(self, name: str, value: Any) -> Any:
        """`value` made canonical, or a `ConfigError` in the CLI's words."""
        if self.parse is not None:
            return self.parse(value)
        if self.choices is not None:
            return canonical_name(value, tuple(self.choices), self.noun or name)
        if value is None or isinstance(value, bool) or not self.bounds and not _is_float(value):
            return value
        if self.bounds and not within(value, self.bounds):
            said = self.bounds if self.bounds[0] in "<>" else f"in {self.bounds}"
            raise ConfigError(f"{flag(name)} must be {_join(self.kind, said)}, got {value}")
        if _is_float(value) and not math.isfinite(value):
            raise ConfigError(f"{flag(name)} must be a finite number")
        if _is_float(value) and abs(value) > FLOAT32_MAX:
            raise ConfigError(f"{flag(name)} must be at most {FLOAT32_MAX:.3g}, got {value:g}")
        return value


def option(default: Any, help: str, *, compare: bool = True, **meta: Any) -> Any:
    """A `RunConfig` field that is an `ecs run` option: its default, its help, and the rest of
    `Option` by keyword. `compare=False`: a resume may change it (where to log, not what)."""
    meta = {"option": Option(help, **meta)}
    return dataclasses.field(default=default, compare=compare, metadata=meta)


def options(config_class: type) -> Iterator[tuple[dataclasses.Field, Option]]:
    """The config's option fields, in declaration order, with their `Option`."""
    for f in dataclasses.fields(config_class):
        if "option" in f.metadata:
            yield f, f.metadata["option"]


def flag(name: str) -> str:
    """A field's flag: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


def within(value: float, bounds: str) -> bool:
    """Whether `value` is in `bounds` (`(0, 1]`, `[0, 1)`, `>= 1`, `> 0`, `1..8`)."""
    if bounds.startswith(">="):
        return value >= float(bounds[2:])
    if bounds.startswith(">"):
        return value > float(bounds[1:])
    if ".." in bounds:
        low, high = (int(x) for x in bounds.split(".."))
        return low <= value <= high
    low, high = (float(x) for x in bounds[1:-1].split(","))
    above = value >= low if bounds[0] == "[" else value > low
    below = value <= high if bounds[-1] == "]" else value < high
    return above and below


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _join(kind: str, said: str) -> str:
    return f"{kind}, {said}" if kind else said
