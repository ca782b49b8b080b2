"""What a run holds while it runs (`Context`), and how a stop request reaches it.

Its own module so that the stages (`checkpoint`, `quant.stage`) can name these without
importing the pipeline that runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ecs_core.config import RunConfig
from ecs_core.data import ImageData
from ecs_core.data.loader import Batches
from ecs_core.distributed import Runtime
from ecs_core.prune import MaskEnforcer
from ecs_core.prune.mask import Mask
from ecs_core.store import RunStore
from ecs_core.summary import Summary


class StopFlag(Protocol):
    """Anything with `is_set()`, e.g. `threading.Event`."""

    def is_set(self) -> bool: ...


class Stopped(Exception):
    """Internal: a stop was requested at a batch boundary."""


@dataclass
class Context:
    """Everything a run holds while it runs (one per call to `run`)."""

    config: RunConfig
    device: torch.device
    data: ImageData
    model: nn.Module
    train: Batches
    test: Batches
    store: RunStore
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    runtime: Runtime
    """The process group the run is one rank of (`distributed.Runtime`: a single process)."""
    mask: Mask | None = None
    enforcer: MaskEnforcer | None = None
    epoch: int = 0
    """Epochs completed (over the whole run: IMP's rounds count on)."""
    round: int = 0
    """IMP: prune rounds done (0: still the dense run)."""
    best_acc: float = -1.0
    summary: Summary = field(default_factory=Summary)
    """summary.json so far: the fold of every event emitted (`stages.emitter`)."""
    ddp: nn.Module | None = None
    """DDP: the DistributedDataParallel wrapper that training steps go through (None: 1 process)."""
