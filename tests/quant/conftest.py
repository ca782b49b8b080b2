"""Fixtures for the quantization tests: a tiny trained CNN and one finished quantized run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ecs_core.config import RunConfig
from ecs_core.data import load_dataset, make_batches
from ecs_core.data.loader import Batches


@pytest.fixture(scope="session")
def digits_batches() -> tuple[Batches, Batches]:
    """(train, test) batches of the embedded digits data, on the CPU, not augmented."""
    d = load_dataset("digits", "./data", download=False)
    cpu = torch.device("cpu")
    train = make_batches(d.train_x, d.train_y, d.mean, d.std, 64, False, False, cpu)
    test = make_batches(d.test_x, d.test_y, d.mean, d.std, 512, False, False, cpu)
    return train, test


def tiny_cnn() -> nn.Module:
    """Three conv-bn-relu-pool blocks and a linear head on a 4x4 map (a Flatten that is not
    1x1 catches layout bugs in the int8 lowering)."""
    layers: list[nn.Module] = []
    for c_in, c_out in ((1, 8), (8, 16), (16, 32)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


@pytest.fixture(scope="session")
def trained_cnn(digits_batches: tuple[Batches, Batches]) -> nn.Module:
    """`tiny_cnn` trained 2 epochs on digits (about 96% test accuracy, a few seconds)."""
    torch.manual_seed(0)
    train, _ = digits_batches
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        model.train()
        for x, y in train.epoch(gen):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def quant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """(run directory, events) of a tiny ECS run with weight sharing, fine-tuning, int8, export."""
    from ecs_core.pipeline import run

    cfg = RunConfig(
        width=0.125, epochs=1, max_batches=2, batch_size=32, calib_batches=1,
        finetune_epochs=1, device="cpu", download=False,
        runs_dir=str(tmp_path_factory.mktemp("runs")),
    )  # fmt: skip
    events = list(run(cfg))
    return Path(events[0].run_dir), events
