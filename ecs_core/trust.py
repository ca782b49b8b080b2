"""Whose model code may run: a `module:factory` model read from a file runs only on the user's word.

A model name is a registered one (`registry.MODELS`, always safe: our code, or code registered in
this process) or `package.module:factory`, which imports that module and calls the factory, so
whoever wrote the name chooses the code that runs. Who wrote it decides:

| where the name comes from                              | imported when                        |
|--------------------------------------------------------|--------------------------------------|
| typed for a new run (`ecs run --model`, the app's form) | always; the working directory is     |
| or typed with `--resume`                               | importable, as with `python -m`      |
| a file: config.json, a checkpoint, a `.ecsz` manifest, | only if its module is trusted:       |
| a sweep's grid file                                    | `ECS_TRUST_MODEL_CODE=mod[,mod]`, or |
|                                                        | `allow()` (the app, after asking);   |
|                                                        | the working directory is not added   |

The trust names modules, not "everything": trusting a colleague's `theirnets` does not trust the
next file's `antigravity`. It is an environment variable, so one setting reaches every command,
the app, and the processes they start (sweep workers, torchrun ranks, the app's export).
"""

from __future__ import annotations

import os
import threading

from ecs_core.names import ConfigError

ENV = "ECS_TRUST_MODEL_CODE"
"""Comma-separated module names (the part before `:`) whose model factories may run; a package
trusts its submodules (importing `mypkg.nets` runs `mypkg` too)."""

_lock = threading.Lock()
_own: set[str] = set()
"""Specs the user typed in this process: theirs, imported with the working directory on the path."""
_allowed: set[str] = set()
"""Modules the user allowed in this process (the app's confirm dialog)."""


class UntrustedModel(ConfigError):
    """A model read from a file names code the user has not trusted; nothing was imported."""

    def __init__(self, spec: str, source: str) -> None:
        self.spec, self.module, self.source = spec, module_of(spec), source
        super().__init__(
            f"{source} names the model {spec}: building it would import and run module "
            f"{self.module}, which you did not choose; if you trust it, run again with "
            f"{ENV}={self.module} (the module on your PYTHONPATH)"
        )


def module_of(spec: str) -> str:
    return spec.strip().partition(":")[0]


def is_custom(name: str) -> bool:
    """True for a `module:factory` spec (registered model names never contain a colon)."""
    return ":" in name


def own(name: str) -> None:
    """The user typed this model name (a new run, or `--resume` with `--model`): it may run."""
    if is_custom(name):
        with _lock:
            _own.add(name.strip())


def allow(module: str) -> None:
    """Trust `module` for the rest of this process (the user said yes when asked)."""
    with _lock:
        _allowed.add(module.strip())


def is_own(spec: str) -> bool:
    with _lock:
        return spec.strip() in _own


def trusted_modules() -> set[str]:
    """Every module whose factories may run here: the environment's, allowed, and typed."""
    from_env = {m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()}
    with _lock:
        return from_env | _allowed | {module_of(s) for s in _own}


def check(name: str, source: str = "a run's file") -> None:
    """Raise `UntrustedModel` unless building `name` runs only code the user chose."""
    if not is_custom(name) or is_own(name):
        return
    module = module_of(name)
    if not any(module == m or module.startswith(m + ".") for m in trusted_modules()):
        raise UntrustedModel(name.strip(), source)


def child_env() -> dict[str, str]:
    """The environment entry that carries this process's trust to a process it starts."""
    modules = trusted_modules()
    return {ENV: ",".join(sorted(modules))} if modules else {}
