"""`ecs run`'s options, made from the `RunConfig` fields' declarations (ecs_core/options.py).

A command declares its own options as usual and takes the fields as `**fields`;
`with_field_options` puts one Typer option per field in their place (Typer reads a function's
`__signature__`), named and explained as the field declares: `--field-name` and its aliases,
the field's help, its type and default.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ecs_core.options import flag, options


def field_parameters(config_class: type) -> list[inspect.Parameter]:
    """One keyword-only Typer option per option field of `config_class`, in field order."""
    hints = typing.get_type_hints(config_class)
    params = []
    for f, opt in options(config_class):
        names = (flag(f.name), *opt.aliases) if opt.aliases else ()  # else Typer's own: a bool
        shown = f.default not in (None, "")  # gets --x/--no-x, which one name would not
        info = typer.Option(*names, help=opt.describe(), show_default=shown)
        annotation = Annotated[hints[f.name], info]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=f.default, annotation=annotation))  # fmt: skip
    return params


def with_field_options(command: Callable[..., Any], config_class: type) -> Callable[..., Any]:
    """`command` (`ctx` first, its own options, then `**fields`) with `**fields` replaced by
    the fields' options, which come first in `--help`; returns `command`."""
    command.__signature__ = None  # type: ignore[attr-defined]  # its own, not a previous one
    own = inspect.signature(command, eval_str=True)
    ctx, *rest = (p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD)
    rest = [p.replace(kind=p.KEYWORD_ONLY) for p in rest]
    params = [ctx, *field_parameters(config_class), *rest]
    command.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    return command
