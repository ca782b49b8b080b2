"""One rank of the DDP test (run by torchrun from test_ddp.py): three tiny runs in one group.

    a)    SNIP, trained to the end;
    stop) the same config, where rank 1 alone asks to stop after its first batch (every rank
          must stop at that same batch), then resumed from rank 0's run directory;
    ecs)  ECS, whose mask is computed after a data-parallel warm-up epoch;
    channel) SNIP with --structure channel (rank 0's kept channels, channels.json).

With a third argument `dst`, two other runs instead, under OUT/dst-runs: set and rigl (the mask
moves during training), where every rank also records its whole mask after each update.

After each run every rank saves the state `pipeline.run` saves as model.safetensors, and its
mask, to OUT/<tag>-rank<N>.pt, so the test can compare ranks with each other and with a
single-process run. The group is made here, so the pipeline joins it and leaves it standing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ecs_core import pipeline
from ecs_core.config import RunConfig
from ecs_core.prune.dst import DynamicMask
from ecs_core.store import RunStore

RANK = int(os.environ["RANK"])
TAG = {"now": ""}
UPDATES: list[dict] = []
"""SET, RigL: this rank's mask after each update of the current run (`record_updates`)."""


class StopAfter:
    """A stop flag that turns on after `n` checks (the pipeline checks once per batch)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.n


class Never:
    def is_set(self) -> bool:
        return False


def keep_state(out: Path):
    original = pipeline._save_model

    def save(ctx: pipeline.Context) -> None:
        original(ctx)
        state = {k: v.detach().cpu().clone() for k, v in ctx.state.model.state_dict().items()}
        mask = {k: v.cpu().clone() for k, v in (ctx.state.mask or {}).items()}
        torch.save({"model": state, "mask": mask, "summary": ctx.summary.to_dict(),
                    "updates": list(UPDATES)}, out / f"{TAG['now']}-rank{RANK}.pt")  # fmt: skip

    return save


def record_updates() -> None:
    """Wrap `DynamicMask.update`: after each update, the step, the connections moved and a
    copy of the whole mask this rank now holds go to UPDATES."""
    original = DynamicMask.update

    def update(self: DynamicMask, *args: object, **kw: object) -> dict[str, int]:
        moved = original(self, *args, **kw)
        mask = {k: v.cpu().clone() for k, v in self.mask.items()}
        UPDATES.append({"step": self.step, "moved": sum(moved.values()), "mask": mask})
        return moved

    DynamicMask.update = update  # type: ignore[method-assign]


def run(tag: str, config: RunConfig, **kw: object) -> list:
    TAG["now"] = tag
    UPDATES.clear()
    return list(pipeline.run(config, **kw))  # type: ignore[arg-type]


def main(out: Path, config: RunConfig) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    pipeline._save_model = keep_state(out)
    run("a", config)
    stop = StopAfter(1) if RANK == 1 else Never()
    events = run("stopped", config, stop=stop)
    assert events[-1].kind == "run_finished" and events[-1].status == "stopped", events[-1]
    run_dir = events[0].run_dir
    events = run("b", config, store=RunStore(run_dir), resume=True)
    assert events[-1].kind == "run_finished" and events[-1].status == "finished", events[-1]
    ecs = dataclasses.replace(config, method="ecs", warmup_epochs=1)
    run("ecs", ecs)
    run("channel", dataclasses.replace(config, structure="channel").validate())
    (out / f"done-rank{RANK}.json").write_text(json.dumps({"stopped_run": run_dir}))
    dist.destroy_process_group()


def main_dst(out: Path, config: RunConfig) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    pipeline._save_model = keep_state(out)
    record_updates()
    for method in ("set", "rigl"):
        run(method, dataclasses.replace(config, method=method, runs_dir=str(out / "dst-runs")))
    dist.destroy_process_group()


if __name__ == "__main__":
    which = main_dst if sys.argv[3:] == ["dst"] else main
    which(Path(sys.argv[1]), RunConfig.from_dict(json.loads(sys.argv[2])))
