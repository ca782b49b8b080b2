"""Checkpoints and resume: everything needed to continue a run bit-for-bit on CPU.

A checkpoint holds the model, mask, optimizer, scheduler, every RNG state, the epoch and the
summary so far; `store.py` writes it atomically and loads it with `weights_only=True`.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ecs_core.config import RunConfig
from ecs_core.prune import MaskEnforcer
from ecs_core.prune.mask import Mask
from ecs_core.store import RunStore, StoreError
from ecs_core.summary import Summary

if TYPE_CHECKING:
    from ecs_core.context import Context


class ResumeError(ValueError):
    """A run directory cannot be resumed with this config."""


def apply_mask(ctx: Context, mask: Mask) -> None:
    """Enforce `mask` from now on, including on the optimizer's momentum buffers."""
    ctx.mask = mask
    ctx.enforcer = MaskEnforcer(ctx.model, mask)
    ctx.enforcer.mask_optimizer_state(ctx.optimizer)


def save_checkpoint(ctx: Context, best: bool = False) -> Any:
    state = {
        "epoch": ctx.epoch,
        "round": ctx.round,
        "model": ctx.model.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "scheduler": ctx.scheduler.state_dict(),
        "mask": {k: v.cpu() for k, v in ctx.mask.items()} if ctx.mask is not None else None,
        "generator": ctx.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": _numpy_state(),
        "python_rng": random.getstate(),
        "best_acc": ctx.best_acc,
        "summary_json": json.dumps(ctx.summary.to_dict()),
        "config_json": json.dumps(ctx.config.to_dict()),
    }
    path = ctx.store.save_checkpoint(state, "last.pt")
    if best:
        ctx.store.save_checkpoint(state, "best.pt")
    return path


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
            "has_gauss": has_gauss, "cached": cached}  # fmt: skip


def check_resumable(store: RunStore, config: RunConfig) -> None:
    """Refuse a resume whose config differs from the run's (naming the fields)."""
    saved = store.read_config().validate()
    diff = saved.differences(config, ignore=("runs_dir", "data_dir", "device", "download", "extra"))
    if diff:
        raise ResumeError(
            f"{store.path} was run with a different config (differs in: {', '.join(diff)}); "
            "resume with the same options or start a new run"
        )


def restore(ctx: Context) -> None:
    """Load the last checkpoint into `ctx` (nothing to do if the run never finished an epoch)."""
    state = ctx.store.load_checkpoint("last.pt")
    if state is None:
        return
    try:
        ctx.model.load_state_dict(state["model"])
        if state["mask"] is not None:
            apply_mask(ctx, {k: v.to(ctx.device).bool() for k, v in state["mask"].items()})
        ctx.optimizer.load_state_dict(state["optimizer"])
        ctx.scheduler.load_state_dict(state["scheduler"])
        ctx.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        ns = state["numpy_rng"]
        np.random.set_state((ns["name"], ns["keys"].numpy().astype(np.uint32), ns["pos"],
                             ns["has_gauss"], ns["cached"]))  # fmt: skip
        random.setstate(state["python_rng"])
        ctx.epoch = int(state["epoch"])
        ctx.round = int(state.get("round", 0))  # checkpoints from before IMP have none
        ctx.best_acc = float(state["best_acc"])
        ctx.summary = Summary.from_dict(json.loads(state["summary_json"]))
        ctx.summary.run_dir = str(ctx.store.path)  # where it is now (it may have moved)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        from ecs_core.errors import one_line

        why = f"{type(exc).__name__}: {one_line(exc, 200)}"
        raise StoreError(
            f"{ctx.store.path / 'checkpoints' / 'last.pt'} does not match this model/config "
            f"({why}); it is damaged or from another run: delete it to start the run over"
        ) from exc
