"""What `RunConfig.validate()` refuses, one line per refusal, in the words `ecs run` prints."""

from __future__ import annotations

import re

import pytest

from ecs_core.config import ConfigError, RunConfig

INF, NAN = float("inf"), float("nan")
CHOICES = "; choose one of: "
REFUSED = [
    (dict(model="alexnet"), "unknown model 'alexnet'" + CHOICES + "vgg16, vgg19"),
    (dict(model="pkg.mod:bad name"), "--model 'pkg.mod:bad name': a model of your own is given"),
    (dict(dataset="mnist"), "unknown dataset 'mnist'" + CHOICES + "digits, fashion-mnist"),
    (dict(method="obd"), "unknown method 'obd'" + CHOICES + "ecs, snip"),
    (dict(scope="row"), "unknown scope 'row'" + CHOICES + "auto, global, layer"),
    (dict(budget="half"), "unknown budget 'half'" + CHOICES + "exact, union"),
    (dict(structure="row"), "unknown structure (--structure) 'row'" + CHOICES + "weight, channel"),
    (dict(method="rigl", structure="channel"), "--method rigl has no channel form"),
    (dict(structure="channel", distribution="erk"), "--structure channel spreads channels by"),
    (dict(ablate="flip"), "unknown ablation (--ablate) 'flip'" + CHOICES + "none, shuffle"),
    (dict(device="tpu"), "unknown device 'tpu'" + CHOICES + "auto, cpu, cuda"),
    (dict(precision="fp16"), "unknown precision 'fp16'" + CHOICES + "auto, fp32, bf16"),
    (dict(width=0.0), "--width must be in (0, 8], got 0.0"),
    (dict(width=8.5), "--width must be in (0, 8], got 8.5"),
    (dict(density=0.0), "--density must be in (0, 1], got 0.0"),
    (dict(density=1.5), "--density must be in (0, 1], got 1.5"),
    (dict(density=NAN), "--density must be in (0, 1], got nan"),
    (dict(warmup_epochs=-1), "--warmup-epochs must be >= 0, got -1"),
    (dict(score_batches=0), "--score-batches must be >= 1, got 0"),
    (dict(prune_iterations=0), "--prune-iterations must be >= 1, got 0"),
    (dict(prune_fraction=1.0), "--prune-fraction must be in (0, 1), got 1.0"),
    (dict(rewind_epoch=-1), "--rewind-epoch must be >= 0, got -1"),
    (dict(epochs=-1), "--epochs must be >= 0, got -1"),
    (dict(batch_size=0), "--batch-size must be >= 1, got 0"),
    (dict(lr=0.0), "--lr must be > 0, got 0.0"),
    (dict(lr=INF), "--lr must be a finite number"),
    (dict(lr=1e39), "--lr must be at most 3.4e+38, got 1e+39"),
    (dict(momentum=1.0), "--momentum must be in [0, 1), got 1.0"),
    (dict(weight_decay=-0.1), "--weight-decay must be >= 0, got -0.1"),
    (dict(weight_decay=INF), "--weight-decay must be a finite number"),
    (dict(step_size=0), "--step-size must be >= 1, got 0"),
    (dict(gamma=0.0), "--gamma must be in (0, 1], got 0.0"),
    (dict(max_batches=0), "--max-batches must be >= 1, got 0"),
    (dict(seed=2**63), "--seed must be a 64-bit integer, in -9223372036854775808..9223372036854775807, got 9223372036854775808"),  # noqa: E501
    (dict(bits=0), "--bits must be in 1..8, got 0"),
    (dict(bits=9), "--bits must be in 1..8, got 9"),
    (dict(finetune_epochs=-1), "--finetune-epochs must be >= 0, got -1"),
    (dict(calib_batches=0), "--calib-batches must be >= 1, got 0"),
    (dict(checkpoint_every=0), "--checkpoint-every must be >= 1, got 0"),
    (dict(method="imp", epochs=3, rewind_epoch=3), "--rewind-epoch must be below --epochs (3): each round trains epochs rewind-epoch+1..epochs, got 3"),  # noqa: E501
    (dict(method="none", ablate="shuffle"), "--ablate shuffle needs a pruning method; --method none is dense"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_validate_refuses(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        RunConfig(**fields).validate()


def test_what_it_accepts_it_makes_canonical() -> None:
    typed = dict(model="VGG16_bn", dataset="CIFAR-10", method="Lottery", scope=" Layer ",
                 ablate="INVERT", device="CPU", precision="FP32")  # fmt: skip
    cfg = RunConfig(**typed, epochs=3).validate()
    assert [getattr(cfg, k) for k in typed] == [
        "vgg16",
        "cifar10",
        "imp",
        "layer",
        "invert",
        "cpu",
        "fp32",
    ]
    assert RunConfig(model=" pkg.mod:factory ").validate().model == "pkg.mod:factory"
    assert RunConfig(method="none", density=0.05).validate().density == 1.0  # dense: all kept
    assert RunConfig(seed=-(2**63), max_batches=None, bits=8).validate().seed == -(2**63)


def test_scope_auto_is_layer_for_channels_and_a_saved_channel_run_keeps_its_scope() -> None:
    """auto: every layer keeps the same fraction of its channels (Torch-Pruning's default);
    global elsewhere. config.json holds what auto became, so a channel run saved before auto
    (scope global) loads as global, as an explicit --scope global does."""
    from ecs_tui.commands.argv import config_to_args

    channel = RunConfig(structure="channel").validate()
    assert (channel.scope, channel.distribution, channel.method_tag) == (
        "layer", "auto", "ecs-layer-channel",
    )  # fmt: skip
    assert RunConfig().validate().scope == "global"
    assert RunConfig(method="none", structure="channel").validate().scope == "global"
    assert RunConfig(structure="channel", distribution="global").validate().scope == "global"
    explicit = RunConfig(structure="channel", scope="global").validate()
    saved = {**RunConfig().to_dict(), "structure": "channel", "scope": "global"}
    old = RunConfig.from_dict(saved).validate()
    assert explicit == old and (old.scope, old.method_tag) == ("global", "ecs-channel")
    assert "--scope" not in config_to_args(channel)
    args = config_to_args(old)
    assert args[args.index("--scope") + 1] == "global"
    assert "--scope" not in config_to_args(RunConfig().validate())


def test_the_dense_run_keeps_no_layout_so_it_is_one_run_whatever_they_say() -> None:
    """`--method none` has nothing to spread or remove: distribution, scope and structure go
    back to their defaults as the density goes to 1, so a sweep's dense cell is one (issue 28)."""
    plain = RunConfig(method="none").validate()
    for change in ({"distribution": "erk"}, {"scope": "layer"}, {"distribution": "uniform"},
                   {"structure": "channel"}, {"density": 0.1}):  # fmt: skip
        assert RunConfig(method="none", **change).validate() == plain, change
    assert (plain.distribution, plain.scope, plain.structure, plain.density) == (
        "auto", "global", "weight", 1.0)  # fmt: skip
