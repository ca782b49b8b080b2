"""The benchmark harness and the fast paths it measures: answers checked, never timings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.common import interleaved, plain_table, row, write_results
from bench.reference.percentile_mask import (
    _threshold,
    ecs_union_mask,
    percentile_mask,
    retain_keeping,
)
from bench.startup import parse_importtime
from ecs_core.data import augment
from ecs_core.data.loader import PAD
from ecs_core.models import build_model
from ecs_core.prune.ecs import ecs_mask, ecs_scores
from ecs_core.prune.mask import keep_count, mask_from_scores
from ecs_core.prune.snip import snip_scores
from ecs_core.train import NonFiniteLoss, Step, _LossCheck, autocast, input_format, train_epoch


@pytest.mark.parametrize("n,k", [(1000, 50), (12345, 617), (99991, 1), (5000, 4999), (777, 388)])
def test_retain_keeping_makes_the_original_keep_exactly_k(n: int, k: int) -> None:
    values = list(np.random.default_rng(n).permutation(n).astype(np.float32))
    threshold = _threshold(values, retain_keeping(n, k))
    assert int((np.array(values) >= threshold).sum()) == k


def test_original_rounding_differs_from_ours_by_at_most_one() -> None:
    """Why the bench needs retain_keeping: np.percentile keeps floor(x*n - x) + 1 weights."""
    n, x = 14_977_728, 0.05  # full-width VGG16's prunable weights
    assert math.floor(x * n - x) + 1 - keep_count(n, x) == 1


def test_reference_masks_equal_ours_on_real_scores() -> None:
    torch.manual_seed(0)
    model = build_model("vgg16", num_classes=10, in_channels=3, width=0.125)
    g = torch.Generator().manual_seed(0)
    batch = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g))]
    snip = snip_scores(model, batch, 1)
    w_abs, g_abs = ecs_scores(model, batch, 1)
    n = sum(s.numel() for s in snip.values())
    retain = retain_keeping(n, keep_count(n, 0.05))
    ref = percentile_mask(snip, retain)
    ours = mask_from_scores(snip, 0.05, "global")
    assert all(torch.equal(ref[k].bool(), ours[k]) for k in ours)
    ref = ecs_union_mask(w_abs, g_abs, retain)
    ours, _ = ecs_mask(w_abs, g_abs, 0.05, "global", "union")
    assert all(torch.equal(ref[k].bool(), ours[k]) for k in ours)


def test_augment_is_crop_then_flip_of_each_image() -> None:
    """The one-gather augmentation equals the per-image crop and flip of the same draws."""
    x = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    out = augment(x, flip=True, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 2 * PAD + 1, (40,), generator=g)
    dx = torch.randint(0, 2 * PAD + 1, (40,), generator=g)
    flips = torch.rand(40, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    for i in range(40):
        crop = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        assert torch.equal(out[i], crop.flip(-1) if flips[i] else crop)
    assert 5 < int(flips.sum()) < 35


def test_step_reads_device_totals_when_asked() -> None:
    step = Step(2, 5, torch.tensor(6.0), torch.tensor(3), 4)
    assert (step.loss, step.acc, step.loss_sum, step.correct) == (1.5, 75.0, 6.0, 3)
    plain = Step(1, 5, 2.0, 1, 2)
    assert (plain.loss, plain.acc) == (1.0, 50.0)


def test_grouped_loss_check_names_the_first_bad_batch() -> None:
    """On a GPU losses are checked every few batches; the error still names the first bad one."""
    check = _LossCheck(10, torch.device("cpu"), epoch=3)
    check.every = 4
    for i, loss in enumerate([1.0, 2.0, float("nan")], start=1):
        check.add(i, torch.tensor(loss))
    with pytest.raises(NonFiniteLoss, match="epoch 3, batch 3"):
        check.add(4, torch.tensor(float("inf")))


def test_inputs_follow_the_model_memory_format(train_batches) -> None:
    model = build_model("vgg16", 10, 1, 0.125)
    assert input_format(model) == torch.contiguous_format
    model = model.to(memory_format=torch.channels_last)
    assert input_format(model) == torch.channels_last
    assert input_format(torch.nn.Linear(3, 2)) is None
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    steps = list(train_epoch(model, train_batches(), opt, torch.Generator().manual_seed(0)))
    assert len(steps) == 2 and math.isfinite(steps[-1].loss)


def test_bf16_precision_trains_on_the_cpu(train_batches) -> None:
    model = build_model("vgg16", 10, 1, 0.125)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    steps = list(train_epoch(model, train_batches(), opt, gen, precision="bf16"))
    assert math.isfinite(steps[-1].loss)
    with pytest.raises(ValueError, match="precision"):
        autocast(torch.device("cpu"), "fp8")


def test_results_file_keeps_other_sections_and_notes(tmp_path) -> None:
    path = tmp_path / "RESULTS.md"
    r = row("thing", "ref", 2.0, 0.5, 4.0, "≥ 2×", True, "a note")
    write_results({"main": [r]}, {"cpu": "test"}, "python -m bench", path)
    path.write_text(path.read_text() + "\n## Notes\nhand-written\n")
    write_results({"gpu": [r]}, {"gpu": "H100"}, "python -m bench.gpu", path)
    write_results({"main": [r | {"what": "other"}]}, {"cpu": "test"}, "python -m bench", path)
    text = path.read_text()
    assert "| other |" in text and "| thing |" in text and "hand-written" in text
    assert text.count("<!-- bench:main -->") == 1 and "- gpu: H100" in text


def test_plain_table_lists_rows_and_notes() -> None:
    text = plain_table([row("a", "b", 1.5, 0.05, 30.0, "≥ 20×", True, "n1")])
    assert "1.50 s" in text and "50 ms" in text and "30×" in text and "[1] n1" in text


def test_interleaved_records_every_repetition() -> None:
    calls: list[str] = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 1)
    assert [len(v) for v in times.values()] == [3, 3]
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_importtime_parser() -> None:
    text = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        340 |   typer\n"
        "import time:      4006 |     167629 | ecs_tui.cli\n"
    )
    assert parse_importtime(text) == {"typer": 340, "ecs_tui.cli": 167629}
