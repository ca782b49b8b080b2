"""Iterative magnitude pruning with rewinding: the lottery-ticket procedure.

Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (rewind to initialisation), and
Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis",
ICML 2020 (rewind to an early epoch k). Round 0 trains the dense model for `epochs`, keeping
its state after `rewind_epoch` epochs (checkpoints/rewind.pt: weights, batch norm, optimizer,
LR schedule). Then each round r = 1..R:

  prune   remove `prune_fraction` of the remaining weights by magnitude of the trained weights
          (global or per layer, `--scope`); the last round lands on `density` exactly;
  rewind  weights, batch norm and LR schedule go back to the saved state, and the mask applies
          from there; the optimizer starts fresh, its momentum zero, as open_lth builds a new
          one for each level (`--imp-optimizer rewound`: its saved state, momentum included);
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
from ecs_core.stages import apply_result, epochs, prune_stage, stage, train_dense


def imp_rounds(ctx: Context, stop: StopFlag | None) -> Iterator[ev.Event]:
    """Round 0 (dense), then prune-rewind-train for each density of `config.rounds`."""
    cfg, st = ctx.config, ctx.state
    densities = cfg.rounds
    rounds = len(densities)
    while True:
        r = st.round
        end = cfg.epochs + r * (cfg.epochs - cfg.rewind_epoch)
        if st.epoch < end:
            body = _train(ctx, stop, end)
            yield from stage(ev.TRAIN, end - st.epoch, body, round=r, rounds=rounds)
        yield ev.RoundDone(round=r, rounds=rounds, epochs_done=st.epoch)
        if r == rounds:
            return
        body = _prune(ctx, densities[r], r + 1, rounds)
        yield from stage(ev.PRUNE, 0, body, round=r + 1, rounds=rounds)


def _train(ctx: Context, stop: StopFlag | None, until: int) -> Iterator[ev.Event]:
    k, st = ctx.config.rewind_epoch, ctx.state
    if st.round == 0 and st.epoch <= k:
        yield from epochs(ctx, k, stop, ev.TRAIN)
        st.save_rewind(ctx.store)  # the state after epoch k (again, identically, after a resume)
    yield from epochs(ctx, until, stop, ev.TRAIN)


def _prune(ctx: Context, density: float, r: int, rounds: int) -> Iterator[ev.Event]:
    cfg, st = ctx.config, ctx.state
    train_dense(ctx)  # channel runs: prune and rewind in the dense model's space
    ablate = cfg.ablate if r == rounds else "none"
    result = yield from prune_stage(
        ctx, density, cfg.method, ablate, keep=st.mask, round=r, rounds=rounds
    )
    st.rewind(ctx.store, fresh=cfg.imp_optimizer == "fresh")
    st.round = r
    # the mask on the rewound weights; checkpoint of round r (training always follows a round:
    # rewind_epoch < epochs, so no test pass on the untrained pruned model)
    yield from apply_result(ctx, result, ablate, evaluate_now=False)
