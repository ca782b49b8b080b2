"""Checkpoints and resume: the run's training state, and everything needed to continue it
bit-for-bit on CPU.

`TrainState` is what a checkpoint holds: the model, mask, optimizer, scheduler, the batch-order
generator, the epoch and IMP round counters and the best accuracy so far; `save` adds every
global RNG state, the summary so far and the config. `store.py` writes it atomically and loads
it with `weights_only=True`. IMP's rewind point (checkpoints/rewind.pt) is a part of it too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecs_core.config import RunConfig
from ecs_core.prune import MaskEnforcer
from ecs_core.prune.compact import IndexMap, optimizer_state
from ecs_core.prune.dst import DynamicMask, Schedule
from ecs_core.prune.mask import Mask, not_binary
from ecs_core.store import RunStore, StoreError
from ecs_core.summary import Summary

REWIND = "rewind.pt"
"""IMP: the state after `rewind_epoch` epochs that every round goes back to."""
_DAMAGED = (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError)


class ResumeError(ValueError):
    """A run directory cannot be resumed with this config."""


@dataclass
class Dense:
    """While a channel run trains the smaller model: the dense model, optimizer and scheduler
    it was sliced from (untouched since: their values at the removed channels are what a
    dense-shaped state holds there) and the map between the two (`TrainState.compact`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    index: IndexMap


@dataclass
class TrainState:
    """What training advances and a checkpoint saves (one per run: `Context.state`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    """The training batches' order (and augmentation) comes from this generator only."""
    mask: Mask | None = None
    enforcer: MaskEnforcer | None = None
    epoch: int = 0
    """Epochs completed (over the whole run: IMP's rounds count on)."""
    round: int = 0
    """IMP: prune rounds done (0: still the dense run)."""
    best_acc: float = -1.0
    """The best test accuracy since the mask in force was applied (-1: none yet)."""
    dst: Schedule | None = None
    """SET, RigL: how the mask moves during training (None: it stays as applied)."""
    dense: Dense | None = None
    """Channel runs, while `model` is the smaller model: the dense one it trains for (None:
    `model` is the dense model). Whatever is saved stays dense-shaped (`model_state`)."""

    def apply_mask(self, mask: Mask) -> None:
        """Enforce `mask` from now on, including on the optimizer's momentum buffers."""
        self.mask = mask
        if self.dst is None:
            self.enforcer = MaskEnforcer(self.model, mask)
        else:
            self.enforcer = self.dst.enforcer(self.model, mask, self.optimizer)
        self.enforcer.mask_optimizer_state(self.optimizer)

    def compact(
        self, small: nn.Module, index: IndexMap, make: Callable[[nn.Module], tuple]
    ) -> None:
        """Train `small` (the dense model shrunk by a channel plan; `index` maps between them)
        from now on: a new optimizer and scheduler from `make(model)` with the dense ones'
        state, each momentum buffer sliced to the kept channels, the LR schedule where it was.
        No enforcer: a channel mask zeroes only the rows and columns of removed channels, so
        the smaller model keeps every weight it has (checked)."""
        kept = index.slice(self.mask or {})
        left = [k for k in kept if not bool(kept[k].all())]
        if left:
            raise ValueError(f"channel mask removes single weights of {left[0]}, not channels")
        names = [n for n, _ in small.named_parameters()]
        if names != [n for n, _ in self.model.named_parameters()]:  # momentum goes by position
            raise ValueError("the smaller model's parameters are not the dense model's, in order")
        optimizer, scheduler = make(small)
        optimizer.load_state_dict(
            optimizer_state(
                self.optimizer.state_dict(), names,
                lambda name, i, key, v: index.slice({name: v})[name],
            )
        )  # fmt: skip
        scheduler.load_state_dict(self.scheduler.state_dict())
        self.dense = Dense(self.model, self.optimizer, self.scheduler, index)
        self.model, self.optimizer, self.scheduler = small, optimizer, scheduler
        self.enforcer = None

    def expand(self) -> None:
        """Back to the dense model (the smaller model's values expanded into it, the removed
        channels as they were) with its optimizer and scheduler, and the mask enforced on it."""
        d = self.dense
        if d is None:
            return
        d.model.load_state_dict(self.model_state())
        d.optimizer.load_state_dict(self.optimizer_state())
        d.scheduler.load_state_dict(self.scheduler.state_dict())
        self.model, self.optimizer, self.scheduler, self.dense = (
            d.model, d.optimizer, d.scheduler, None
        )  # fmt: skip
        if self.mask is not None:
            self.apply_mask(self.mask)

    def model_state(self) -> dict[str, torch.Tensor]:
        """The model's state dict, dense-shaped (the smaller model's expanded)."""
        if self.dense is None:
            return self.model.state_dict()
        return self.dense.index.expand(self.model.state_dict(), self.dense.model.state_dict())

    def optimizer_state(self) -> dict[str, Any]:
        """The optimizer's state dict, dense-shaped (momentum buffers expanded; a buffer the
        dense optimizer never made is 0 at the removed channels)."""
        state = self.optimizer.state_dict()
        if self.dense is None:
            return state
        d = self.dense
        params = dict(d.model.named_parameters())
        base = d.optimizer.state_dict()["state"]

        def expand(name: str, i: int, key: str, v: torch.Tensor) -> torch.Tensor:
            was = base.get(i, {}).get(key)
            was = torch.zeros_like(params[name]) if was is None else was
            return d.index.expand({name: v}, {name: was})[name]

        return optimizer_state(state, [n for n, _ in self.model.named_parameters()], expand)

    def save(
        self, store: RunStore, summary: Summary, config: RunConfig, best: bool = False
    ) -> Path:
        """checkpoints/last.pt (and best.pt when `best`): this state, every RNG, the summary."""
        state = {
            "epoch": self.epoch,
            "round": self.round,
            "model": self.model_state(),
            "optimizer": self.optimizer_state(),
            "scheduler": self.scheduler.state_dict(),
            "mask": {k: v.cpu() for k, v in self.mask.items()} if self.mask is not None else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": _numpy_state(),
            "python_rng": random.getstate(),
            "best_acc": self.best_acc,
            "dst": self.enforcer.state() if isinstance(self.enforcer, DynamicMask) else None,
            "summary_json": json.dumps(summary.to_dict()),
            "config_json": json.dumps(config.to_dict()),
        }
        path = store.save_checkpoint(state, "last.pt")
        if best:
            store.save_checkpoint(state, "best.pt")
        return path

    def restore(self, store: RunStore, device: torch.device) -> Summary | None:
        """Load checkpoints/last.pt into this state; the summary it was saved with (None: the
        run never saved one, so there is nothing to restore)."""
        state = store.load_checkpoint("last.pt")
        if state is None:
            return None
        try:
            self.model.load_state_dict(state["model"])
            if state["mask"] is not None:
                why = not_binary(state["mask"], store.path / "checkpoints" / "last.pt")
                if why:
                    raise StoreError(why)
                self.apply_mask({k: v.to(device).bool() for k, v in state["mask"].items()})
            if state.get("dst") is not None and isinstance(self.enforcer, DynamicMask):
                self.enforcer.load_state(state["dst"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            ns = state["numpy_rng"]
            np.random.set_state((ns["name"], ns["keys"].numpy().astype(np.uint32), ns["pos"],
                                 ns["has_gauss"], ns["cached"]))  # fmt: skip
            random.setstate(state["python_rng"])
            self.epoch = int(state["epoch"])
            self.round = int(state.get("round", 0))  # checkpoints from before IMP have none
            self.best_acc = float(state["best_acc"])
            summary = Summary.from_dict(json.loads(state["summary_json"]))
        except _DAMAGED as exc:
            raise _damaged(store.path / "checkpoints" / "last.pt", exc) from exc
        summary.run_dir = str(store.path)  # where it is now (it may have moved)
        return summary

    def save_rewind(self, store: RunStore) -> None:
        """IMP: keep this state (weights, batch norm, optimizer, LR schedule) to rewind to."""
        state = {
            "epoch": self.epoch,
            "model": self.model_state(),
            "optimizer": self.optimizer_state(),
            "scheduler": self.scheduler.state_dict(),
        }
        store.save_checkpoint(state, REWIND)

    def rewind(self, store: RunStore, fresh: bool = False) -> None:
        """IMP: weights, batch norm, optimizer and LR schedule back to the saved rewind point
        (the epoch counter counts on: a round's epochs follow the last round's).

        `fresh` (`--imp-optimizer fresh`): the optimizer as newly built instead, its momentum
        buffers zero (open_lth trains each level with a new optimizer; SGD's first step from a
        zero buffer is its first step without one), its learning rate the schedule's."""
        state = store.load_checkpoint(REWIND)
        path = store.path / "checkpoints" / REWIND
        if state is None:
            raise StoreError(f"{path} is missing, so IMP cannot rewind: start the run over")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except _DAMAGED as exc:
            raise _damaged(path, exc) from exc
        if fresh:
            with torch.no_grad():
                for buffers in self.optimizer.state.values():
                    for value in buffers.values():
                        if isinstance(value, torch.Tensor):
                            value.zero_()


def _damaged(path: Path, exc: Exception) -> StoreError:
    from ecs_core.errors import one_line

    why = f"{type(exc).__name__}: {one_line(exc, 200)}"
    return StoreError(
        f"{path} does not match this model/config ({why}); it is damaged or from another "
        "run: delete it to start the run over"
    )


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
            "has_gauss": has_gauss, "cached": cached}  # fmt: skip


RESUME_MAY_DIFFER = ("runs_dir", "data_dir", "device", "download", "extra")
"""Where a run reads and writes, not what it computes: a resume may change these."""


def check_resumable(store: RunStore, config: RunConfig) -> None:
    """Refuse a resume whose config differs from the run's, or whose config.json differs from
    the config its checkpoint was saved with (an edited file), naming the fields; and one whose
    checkpoint claims an epoch the run cannot have reached."""
    written = store.read_config()
    saved = written.validate()
    diff = saved.differences(config, ignore=RESUME_MAY_DIFFER)
    if diff:
        raise ResumeError(
            f"{store.path} was run with a different config (differs in: {', '.join(diff)}); "
            "resume with the same options or start a new run"
        )
    state = store.load_checkpoint("last.pt")
    if state is None:
        return
    path = store.path / "checkpoints" / "last.pt"
    try:
        stored = RunConfig.from_dict(json.loads(state["config_json"]))
        epoch = state["epoch"]
    except (*_DAMAGED, json.JSONDecodeError) as exc:
        raise _damaged(path, exc) from exc
    # both as written (validate's canonical form may have changed since: a dense run's scope)
    diff = stored.differences(written, ignore=RESUME_MAY_DIFFER)
    if diff:
        raise ResumeError(
            f"{store.path / 'config.json'} differs from the config its checkpoint was saved "
            f"with (differs in: {', '.join(diff)}); it was edited: put those values back, or "
            "start a new run with the options you want"
        )
    if type(epoch) is not int or not 0 <= epoch <= saved.total_epochs:
        raise StoreError(
            f"{path} claims epoch {epoch!r} of a {saved.total_epochs}-epoch run; it is damaged "
            "or from another run: delete it to start the run over"
        )
