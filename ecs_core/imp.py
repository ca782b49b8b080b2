"""Iterative magnitude pruning with rewinding: the lottery-ticket procedure.

Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (rewind to initialisation), and
Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis",
ICML 2020 (rewind to an early epoch k). Round 0 trains the dense model for `epochs`, keeping
its state after `rewind_epoch` epochs (checkpoints/rewind.pt: weights, batch norm, optimizer,
LR schedule). Then each round r = 1..R:

  prune   remove `prune_fraction` of the remaining weights by magnitude of the trained weights
          (global or per layer, `--scope`); the last round lands on `density` exactly;
  rewind  weights, batch norm, optimizer and LR schedule go back to the saved state, and the
          mask applies from there (on the momentum buffers too);
  train   epochs rewind_epoch+1 .. epochs again with the mask fixed.

Every round is its own stage events (`round`, `rounds`), its own Pruned event with the
per-layer report, and its own entry in the summary's `imp_rounds`. Epoch numbers count on
over the rounds (`RunConfig.total_epochs`), so curves read left to right. The checkpoint
holds the round, so a resume continues mid-round or between rounds. An ablation
(`--ablate`) applies to the last round's mask only: that mask is the method's result.
"""

from __future__ import annotations

from collections.abc import Iterator

from ecs_core import events as ev
from ecs_core.context import Context, StopFlag
from ecs_core.stages import Emit, apply_result, epochs, prune_stage, stage
from ecs_core.store import StoreError

REWIND = "rewind.pt"


def imp_rounds(ctx: Context, stop: StopFlag | None, emit: Emit) -> Iterator[ev.Event]:
    """Round 0 (dense), then prune-rewind-train for each density of `config.rounds`."""
    cfg = ctx.config
    densities = cfg.rounds
    rounds = len(densities)
    while True:
        r = ctx.round
        end = cfg.epochs + r * (cfg.epochs - cfg.rewind_epoch)
        if ctx.epoch < end:
            body = _train(ctx, stop, emit, end)
            yield from stage("train", end - ctx.epoch, emit, body, round=r, rounds=rounds)
        yield emit(ev.RoundDone(round=r, rounds=rounds, epochs_done=ctx.epoch))
        if r == rounds:
            return
        body = _prune(ctx, emit, densities[r], r + 1, rounds)
        yield from stage("prune", 0, emit, body, round=r + 1, rounds=rounds)


def _train(ctx: Context, stop: StopFlag | None, emit: Emit, until: int) -> Iterator[ev.Event]:
    k = ctx.config.rewind_epoch
    if ctx.round == 0 and ctx.epoch <= k:
        yield from epochs(ctx, k, stop, emit, "train")
        _save_rewind(ctx)  # the state after epoch k (again, identically, after a resume at k)
    yield from epochs(ctx, until, stop, emit, "train")


def _prune(ctx: Context, emit: Emit, density: float, r: int, rounds: int) -> Iterator[ev.Event]:
    cfg = ctx.config
    ablate = cfg.ablate if r == rounds else "none"
    result = yield from prune_stage(
        ctx, emit, density, cfg.method, ablate, keep=ctx.mask, round=r, rounds=rounds
    )
    _rewind(ctx)
    ctx.round = r
    # the mask on the rewound weights; checkpoint of round r (training always follows a round:
    # rewind_epoch < epochs, so no test pass on the untrained pruned model)
    yield apply_result(ctx, result, ablate, emit, evaluate_now=False)


def _save_rewind(ctx: Context) -> None:
    state = {
        "epoch": ctx.epoch,
        "model": ctx.model.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "scheduler": ctx.scheduler.state_dict(),
    }
    ctx.store.save_checkpoint(state, REWIND)


def _rewind(ctx: Context) -> None:
    state = ctx.store.load_checkpoint(REWIND)
    path = ctx.store.path / "checkpoints" / REWIND
    if state is None:
        raise StoreError(f"{path} is missing, so IMP cannot rewind: start the run over")
    try:
        ctx.model.load_state_dict(state["model"])
        ctx.optimizer.load_state_dict(state["optimizer"])
        ctx.scheduler.load_state_dict(state["scheduler"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise StoreError(f"{path} does not match this run ({type(exc).__name__}): start the run "
                         "over") from exc  # fmt: skip
