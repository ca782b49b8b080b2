"""What a run holds while it runs (`Context`), and how a stop request reaches it.

Its own module so that the stages (`stages`, `imp`, `quant.stage`) can name these without
importing the pipeline that runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ecs_core.checkpoint import TrainState
from ecs_core.config import RunConfig
from ecs_core.data import ImageData
from ecs_core.data.loader import Batches
from ecs_core.distributed import Runtime
from ecs_core.store import RunStore
from ecs_core.summary import Summary


class StopFlag(Protocol):
    """Anything with `is_set()`, e.g. `threading.Event`."""

    def is_set(self) -> bool: ...


class Stopped(Exception):
    """Internal: a stop was requested at a batch boundary."""


@dataclass
class Context:
    """Everything a run holds while it runs (one per call to `run`): its inputs, fixed once
    `prepare` made them, and the training state the stages advance (`state`)."""

    config: RunConfig
    device: torch.device
    data: ImageData
    train: Batches
    test: Batches
    store: RunStore
    runtime: Runtime
    """The process group the run is one rank of (`distributed.Runtime`: a single process)."""
    state: TrainState
    """Model, optimizer, mask and counters: what a checkpoint saves (`checkpoint.TrainState`)."""
    summary: Summary = field(default_factory=Summary)
    """summary.json so far: the fold of every event the run emitted (`pipeline._run`)."""
    ddp: nn.Module | None = None
    """DDP: the DistributedDataParallel wrapper that training steps go through (None: 1 process)."""
    int8: Any = None
    """The int8 model the quantize stage built (`quant.int8.Int8Model`, batch 64), for the
    latency step to time; None without one."""

    def save_checkpoint(self, best: bool = False, summary: Summary | None = None) -> Path:
        """checkpoints/last.pt (and best.pt) of the state as it is now, with the summary so
        far (or `summary`: one with an event folded in that has not left yet)."""
        return self.state.save(self.store, summary or self.summary, self.config, best)
