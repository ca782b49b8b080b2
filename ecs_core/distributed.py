"""Data-parallel training with torch.distributed (DistributedDataParallel), launched by torchrun.

    torchrun --standalone --nproc-per-node 2 -m ecs_tui.cli run --model vgg16 ...

torchrun gives every worker RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
`join` reads them and returns the run's runtime: a `Group` (this rank of the job), or with
WORLD_SIZE unset or 1 a plain `Runtime`, whose every method is the identity, so a
single-process run computes exactly what it computed before this module existed. The pipeline
receives the runtime, and it and the stages call it as `ctx.runtime` (each call marked `DDP:`).

Why a data-parallel run equals the single-process run with the same global batch:
    1) every rank draws the same shuffle and the same augmentation (one generator, seeded by the
       config, as DistributedSampler shares its seed) and keeps its own slice of each global
       batch, so the union of the shards is the single-process batch;
    2) DDP averages gradients, so every step follows the mean loss over the global batch
       (batch-norm statistics stay per rank, as with plain DDP; buffers are re-synced from
       rank 0 before each evaluation so every rank holds the same model);
    3) the mask is computed once, on rank 0, on full global batches, and broadcast;
    4) only rank 0 writes the run directory; a stop request is agreed by all ranks at the same
       batch boundary (one rank leaving the collective loop early would hang the others).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ecs_core.config import ConfigError, RunConfig
from ecs_core.data.loader import Batches
from ecs_core.store import RunStore
from ecs_core.train import Step

T = TypeVar("T")


def env_world_size() -> int:
    """Processes torchrun started (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched by torchrun); readable
    before the group exists, e.g. to print from rank 0 only."""
    return int(os.environ.get("RANK", "0") or 0)


def join(device: torch.device) -> Runtime:
    """The runtime of this process: the group torchrun describes (nccl on GPUs, gloo on CPU),
    joined, on this rank's device; or a single-process `Runtime` on `device`. A group made
    here is left by `close()`; one the caller made stays up."""
    if env_world_size() <= 1:
        return Runtime(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        # One GPU per process: LOCAL_RANK picks it (torchrun numbers ranks per node from 0).
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size(), local, device, owns)


class Runtime:
    """A single process: every method is the identity (or does the one process's share)."""

    rank, size = 0, 1

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def is_main(self) -> bool:
        """True on rank 0 and in single-process runs: the process that writes and prints."""
        return self.rank == 0

    def seed_rank(self, seed: int) -> None:
        """Per-rank seed for any randomness outside the shared data stream (called after model
        init, which must stay identical on every rank)."""

    def shard(self, batches: Batches, batch_size: int) -> Batches | ShardedBatches:
        """Split each global batch of `batch_size` images evenly over the ranks."""
        return batches

    def wrap(self, model: nn.Module) -> nn.Module | None:
        """DistributedDataParallel around `model` (None when single-process). Keep training
        through the wrapper (it all-reduces gradients in backward), all else through `model`."""
        return None

    def reduce_step(self, step: Step | None) -> Step | None:
        """Epoch totals over all ranks (loss, correct, images), so the epoch line is global."""
        return step

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm running statistics) to every rank."""

    def agreed(self, stop: Any) -> Any:
        """A stop flag that all ranks agree on (the flag itself when single-process)."""
        return stop

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 only and give every rank its result."""
        return fn()

    def create_store(self, config: RunConfig) -> RunStore:
        """A new run directory, made by rank 0; the other ranks learn its path."""
        return RunStore.create(config.runs_dir, config)

    def rank_store(self, store: RunStore) -> RunStore:
        """`store` on rank 0 (and single-process); a read-only view of it on the other ranks."""
        return store if self.is_main() else ReadOnlyStore(store.path)

    def close(self) -> None:
        """Leave the group if `join` made it. Call it from a `finally` block."""


class Group(Runtime):
    """This process's place in a torchrun job: DDP over `size` ranks."""

    def __init__(
        self, rank: int, size: int, local_rank: int, device: torch.device, owns_group: bool
    ) -> None:
        super().__init__(device)
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.owns_group = owns_group
        """True when `join` created the process group (so `close` destroys it)."""

    def seed_rank(self, seed: int) -> None:
        s = seed + self.rank
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)

    def shard(self, batches: Batches, batch_size: int) -> Batches | ShardedBatches:
        if batch_size % self.size:
            raise ConfigError(
                f"--batch-size {batch_size} is the global batch and must divide evenly over "
                f"{self.size} processes; use a multiple of {self.size}"
            )
        return ShardedBatches(batches, self.rank, self.size)

    def wrap(self, model: nn.Module) -> nn.Module | None:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def reduce_step(self, step: Step | None) -> Step | None:
        if step is None:
            return step
        t = torch.tensor([step.loss_sum, step.correct, step.seen], dtype=torch.float64)
        t = t.to(self.device)
        dist.all_reduce(t)
        loss_sum, correct, seen = t.tolist()
        return Step(step.batch, step.batches, loss_sum, int(correct), int(seen))

    @torch.no_grad()
    def sync_buffers(self, model: nn.Module) -> None:
        """DDP broadcasts the buffers before each training forward, and each rank then updates
        them with its own shard, so after an epoch they differ slightly; evaluation and
        checkpoints need one model."""
        for buf in model.buffers():
            dist.broadcast(buf, src=0)

    def agreed(self, stop: Any) -> Any:
        return stop if stop is None else AgreedStop(stop, self.device)

    def on_main(self, fn: Callable[[], T]) -> T:
        """Tensors in the result travel on the CPU and land on this rank's device. If `fn`
        fails on rank 0, every rank raises (instead of the others waiting forever in the
        broadcast)."""
        box: list[Any] = [None]
        error: BaseException | None = None
        if self.rank == 0:
            try:
                box[0] = ("ok", _map_tensors(fn(), lambda t: t.cpu()))
            except Exception as exc:  # re-raised below, after the others are told
                error, box[0] = exc, ("error", f"{type(exc).__name__}: {exc}")
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        status, value = box[0]
        if status == "error":
            raise RuntimeError(f"rank 0 failed: {value}")
        return _map_tensors(value, lambda t: t.to(self.device))

    def create_store(self, config: RunConfig) -> RunStore:
        made: list[RunStore] = []

        def make() -> str:
            made.append(RunStore.create(config.runs_dir, config))
            return str(made[0].path)

        path = self.on_main(make)
        return made[0] if made else ReadOnlyStore(path)

    def close(self) -> None:
        """After a clean finish every rank waits for the others first: gloo aborts a process
        whose peer closes the connection under it. After an error it does not wait (the other
        ranks may be gone or stuck); torchrun ends the job."""
        if self.owns_group and dist.is_initialized():
            if sys.exc_info()[0] is None:
                dist.barrier()
            dist.destroy_process_group()


class AgreedStop:
    """A stop flag that is set on every rank as soon as it is set on any rank.

    `is_set()` is a collective (one tiny all-reduce); the pipeline calls it at the same batch
    boundaries on every rank, so all ranks leave the training loop together.
    """

    def __init__(self, local: Any, device: torch.device) -> None:
        self.local, self.device = local, device

    def is_set(self) -> bool:
        flag = torch.tensor([1.0 if self.local.is_set() else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


# --- data


class ShardedBatches:
    """This rank's slice of every global batch; order and augmentation are the same on all ranks.

    Iterating costs each rank the augmentation of the whole global batch (a cheap gather on the
    uint8 images) so that the random draws, and so the shards, match the single-process batch.
    """

    def __init__(self, full: Batches, rank: int, size: int) -> None:
        self.full, self.rank, self.size = full, rank, size

    def __len__(self) -> int:
        return len(self.full)

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
        for x, y in self.full.epoch(generator):
            if len(y) < self.size:
                continue  # a last batch too small to give every rank an image: all ranks skip it
            yield x.tensor_split(self.size)[self.rank], y.tensor_split(self.size)[self.rank]

    __iter__ = epoch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.full, name)


def full_batches(batches: Batches | ShardedBatches) -> Batches:
    """The global batches behind a shard (pruning scores use the single-process batches)."""
    return batches.full if isinstance(batches, ShardedBatches) else batches


def _map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = dataclasses.fields(obj)
        return dataclasses.replace(
            obj, **{f.name: _map_tensors(getattr(obj, f.name), fn) for f in fields if f.init}
        )
    return obj


# --- the run directory: rank 0 writes, the others only read


class ReadOnlyStore(RunStore):
    """What ranks other than 0 hold: the same run directory, reads allowed, writes dropped."""

    def lock(self) -> None:
        pass  # rank 0 holds the run directory's lock for every rank

    def write_config(self, config: RunConfig) -> None:
        pass

    def write_summary(self, summary: dict[str, Any]) -> None:
        pass

    def append_event(self, event: Any) -> None:
        pass

    def save_tensors(self, name: str, tensors: dict[str, torch.Tensor]) -> Path:
        return self.path / name

    def save_checkpoint(self, state: dict[str, Any], name: str = "last.pt") -> Path:
        return self.path / "checkpoints" / name
