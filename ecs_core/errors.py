"""Turn the failures a user can cause into one line that says what to do."""

from __future__ import annotations

import errno

import torch

from ecs_core.config import RunConfig


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line (torch's multi-line messages joined by "; "), cut at `limit`."""
    line = ""
    for part in (p.strip() for p in str(text).splitlines()):
        if part:
            line += ("" if not line else " " if line.endswith(":") else "; ") + part
    return line if len(line) <= limit else line[: limit - 1] + "…"


def explain(exc: BaseException, config: RunConfig | None = None) -> str:
    """A one-line, actionable message for `exc` (falls back to the exception's own text)."""
    if isinstance(exc, torch.OutOfMemoryError):
        bs = config.batch_size if config is not None else "the current"
        smaller = max(1, config.batch_size // 2) if config is not None else "a smaller value"
        return (
            f"the GPU ran out of memory at batch size {bs}; try --batch-size {smaller} "
            "(or a smaller --width), then --resume the run"
        )
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        return f"the disk is full ({exc}); free space, then --resume the run"
    return one_line(exc, 1000) or type(exc).__name__
