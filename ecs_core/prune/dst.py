"""Dynamic sparse training: the mask moves during training at a fixed density.

- SET (Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
  connectivity", Nature Communications 2018): drop the smallest-magnitude kept weights, regrow
  as many at random.
- RigL (Evci, Gale, Menick, Castro & Elsen, "Rigging the Lottery", ICML 2020): drop the same way,
  regrow where the dense gradient is largest.

Both start from a random mask at the target density (`--distribution`, ERK by default, as the
papers), and follow RigL's schedule (`Schedule`): an update every `dst_interval` optimizer steps,
each moving `dst_drop` of every layer's kept weights, decayed to 0 by a cosine, and none after
`dst_end` of the training steps. Each layer drops and regrows the same number, so every layer's
count (and the density) is exact at every step. A regrown weight starts at 0, with 0 momentum;
a dropped one is 0 from the update on, as every pruned weight (`MaskEnforcer`).

DDP: every rank computes the same update. DDP all-reduces the gradients during the backward pass,
so the dense gradient RigL reads is the same on every rank, as are the weights; SET draws from a
generator seeded by the config alone, not the rank. Nothing is broadcast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ecs_core import events as ev
from ecs_core.prune.mask import Mask, MaskEnforcer

GROW_SEED = 2_000_003
"""Added to the run's seed for SET's random regrowth (a generator of its own)."""


@dataclass(frozen=True)
class Schedule:
    """When the mask moves and by how much (RigL's: every 100 steps, 0.3 with cosine decay,
    none in the last quarter of training)."""

    grow: str
    """random (SET) | gradient (RigL)"""
    interval: int
    drop: float
    end_step: int
    """No update at or after this optimizer step (dst_end of the run's training steps)."""
    seed: int

    def due(self, step: int) -> bool:
        """Whether the mask moves after optimizer step `step` (1-based, over the whole run)."""
        return 0 < step < self.end_step and step % self.interval == 0

    def fraction(self, step: int) -> float:
        """The fraction of each layer's kept weights moved at `step`: cosine decay from `drop`
        at step 0 to 0 at `end_step` (Evci et al., eq. 1)."""
        return self.drop / 2 * (1 + math.cos(math.pi * step / self.end_step))

    def enforcer(self, model: nn.Module, mask: Mask, optimizer: Any) -> DynamicMask:
        return DynamicMask(model, mask, optimizer, self)


def schedule(config: Any, steps_per_epoch: int) -> Schedule | None:
    """The run's schedule (None: the method keeps its mask fixed). Training steps with the mask:
    every epoch after the prune point."""
    from ecs_core.registry import pruner

    grow = pruner(config.method).grow
    if not grow:
        return None
    steps = (config.epochs - config.prune_epoch) * steps_per_epoch
    end = max(1, math.floor(config.dst_end * steps))
    return Schedule(grow, config.dst_interval, config.dst_drop, end, config.seed + GROW_SEED)


class DynamicMask(MaskEnforcer):
    """A `MaskEnforcer` whose mask moves on `schedule`: after the optimizer step at which an
    update is due, drop and regrow in every layer (`update`). `mask` is the run's own dict
    (`TrainState.mask`), changed in place, so checkpoints and the export hold the live mask."""

    def __init__(self, model: nn.Module, mask: Mask, optimizer: Any, schedule: Schedule) -> None:
        super().__init__(model, mask)
        self.mask, self.optimizer, self.schedule = mask, optimizer, schedule
        self.step = 0
        """Optimizer steps taken with this mask (checkpointed: `state`)."""
        self.generator = torch.Generator().manual_seed(schedule.seed)
        self.grads: list[torch.Tensor] | None = None
        self.pending: list[tuple[int, dict[str, int], float]] = []
        """(step, connections moved per layer, drop fraction) of updates not yet told
        (`take_events`)."""

    @torch.no_grad()
    def after_backward(self) -> None:
        if self.schedule.grow == "gradient" and self.schedule.due(self.step + 1):
            # RigL reads the dense gradient: taken before the pruned entries are zeroed
            self.grads = [
                torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                for p in self.params
            ]
        super().after_backward()

    @torch.no_grad()
    def after_step(self) -> None:
        self.step += 1
        self.apply()
        if self.schedule.due(self.step):
            fraction = self.schedule.fraction(self.step)
            self.pending.append((self.step, self.update(fraction, self.grads), fraction))
            self.grads = None

    @torch.no_grad()
    def update(self, fraction: float, grads: list[torch.Tensor] | None = None) -> dict[str, int]:
        """Move `fraction` of every layer's kept weights; the connections new in each layer's
        mask (as many left it), for the layers that moved any. `grads`: the dense gradients
        (RigL); None draws at random."""
        moved: dict[str, int] = {}
        for i, (name, p, m) in enumerate(zip(self.mask, self.params, self.masks, strict=True)):
            kept = self.mask[name].reshape(-1)  # (masks, weights may be channels-last)
            k = math.floor(fraction * int(torch.count_nonzero(kept)))
            if k == 0:
                continue
            # 1) drop the k smallest |w| among the kept weights
            magnitude = torch.where(kept, p.detach().abs().reshape(-1).float(), math.inf)
            after = kept.clone()
            after[torch.topk(magnitude, k, largest=False).indices] = False
            # 2) regrow k among the rest (the just-dropped included): largest |g|, or at random
            if grads is not None:
                score = grads[i].abs().reshape(-1).float()
            else:
                score = torch.rand(kept.numel(), generator=self.generator).to(kept.device)
            grow = torch.topk(torch.where(after, -1.0, score), k).indices
            after[grow] = True
            new = int(torch.count_nonzero(after & ~kept))
            if new:
                moved[name] = new
            self._install(i, name, p, m, after, grow)
        return moved

    def _install(self, i: int, name: str, p, m, after: torch.Tensor, grow: torch.Tensor) -> None:
        """The layer's new mask in force: regrown weights and their momentum start at 0,
        dropped ones are zeroed with their momentum (as every pruned weight)."""
        self.mask[name] = after.view_as(self.mask[name])
        m.copy_(after.view_as(m))
        regrown = torch.zeros(p.numel(), dtype=torch.bool, device=p.device)
        regrown[grow] = True  # flat indices in the logical order, whatever p's memory format
        regrown = regrown.view(p.shape)
        p.masked_fill_(regrown, 0)
        p.mul_(m)
        for buf in self.optimizer.state.get(p, {}).values():
            if isinstance(buf, torch.Tensor) and buf.shape == p.shape:
                buf.masked_fill_(regrown, 0)
                buf.mul_(m)

    def take_events(self, epoch: int) -> list[ev.MaskUpdated]:
        """The updates since the last call, as events (the kept count is each layer's, fixed)."""
        kept = sum(int(torch.count_nonzero(m)) for m in self.mask.values())
        out = [
            ev.MaskUpdated(
                step=s, epoch=epoch, moved=sum(n.values()), drop_fraction=f, kept=kept, layers=n
            )
            for s, n, f in self.pending
        ]
        self.pending = []
        return out

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the schedule: the step count and SET's generator."""
        return {"step": self.step, "generator": self.generator.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
