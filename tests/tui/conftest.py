"""Fixtures for the app's tests: canned event streams, fake runners, and a fixed run directory.

Snapshots must be the same on every machine and every day, so nothing here trains: the event
stream is written out by hand (fixed times, fixed metrics), and the finished run directory is
built from a model with numpy-drawn weights (the same on every CPU) and a magnitude mask, with
`quantized.safetensors` made by rounding each layer's kept weights to 32 evenly spaced levels
(a stand-in for k-means, good for views).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot

from ecs_core import events as ev
from ecs_core.config import RunConfig

RUN_NAME = "20250101-000000-vgg16-digits-ecs-d0.05-s0"
RUN_DIR = f"runs/{RUN_NAME}"
"""What the canned events say their run directory is (relative: no tmp path on screen)."""
T0 = 1_735_689_600.0
CONFIG = RunConfig(
    width=0.125, epochs=4, max_batches=12, batch_size=64, runs_dir="runs", seed=0
).validate()


def _t(i: int) -> dict[str, float]:
    return {"t": T0 + i}


def canned_events(layers: list[dict[str, Any]] | None = None) -> list[ev.Event]:
    """A whole ECS run: warm-up epoch, prune, three epochs, quantize, export, finish."""
    layers = layers or [
        {"name": "features.0.weight", "params": 72, "kept": 70, "density": 70 / 72},
        {"name": "classifier.weight", "params": 640, "kept": 2, "density": 2 / 640},
    ]
    kept, total = sum(r["kept"] for r in layers), sum(r["params"] for r in layers)
    out: list[ev.Event] = [
        ev.RunStarted(run_dir=RUN_DIR, config=CONFIG.to_dict(), device="cpu", params=235_762,
                      train_size=1437, test_size=360, **_t(0)),
        ev.StageStarted(stage="warmup", epochs=1, **_t(1)),
    ]  # fmt: skip
    out += _epoch("warmup", 1, 2.30, 20.0, 18.0)
    out += [
        ev.StageFinished(stage="warmup", seconds=6.0, **_t(20)),
        ev.StageStarted(stage="prune", **_t(21)),
        ev.Pruned(method="ecs", scope="global", budget="exact", target_density=0.05,
                  density=kept / total, kept=kept, total=total, layers=layers,
                  collapsed_layers=[], overlap={"both": kept // 3, "weight_only": kept // 3,
                  "grad_only": kept - 2 * (kept // 3)}, seconds=0.5, **_t(22)),
        ev.StageFinished(stage="prune", seconds=0.5, **_t(23)),
        ev.StageStarted(stage="train", epochs=3, **_t(24)),
    ]  # fmt: skip
    for e, (loss, train, test) in enumerate(
        [(1.9, 35.0, 41.5), (1.2, 60.0, 66.4), (0.8, 74.0, 78.1)], 2
    ):
        out += _epoch("train", e, loss, train, test, density=kept / total)
    quant = {"bits": 5, "unique_before": kept, "unique_after": 64, "test_acc": 77.8}
    out += [
        ev.StageFinished(stage="train", seconds=18.0, **_t(90)),
        ev.StageStarted(stage="quantize", **_t(91)),
        ev.Quantized(layers=[], int8_test_acc=77.5, seconds=1.0, **quant, **_t(92)),
        ev.Exported(path=f"{RUN_DIR}/model.ecsz", dense_bytes=943_048, sparse_bytes=94_000,
                    compressed_bytes=9_100, **_t(93)),
        ev.StageFinished(stage="quantize", seconds=1.5, **_t(94)),
    ]  # fmt: skip
    summary = summary_for(layers, kept, total, quant)
    out.append(ev.RunFinished(status="finished", test_acc=78.1, summary=summary, seconds=95.0,
                              **_t(95)))  # fmt: skip
    return out


def _epoch(stage: str, epoch: int, loss: float, train: float, test: float, density: float = 1.0):
    base = epoch * 20
    steps = [
        ev.BatchProgress(stage=stage, epoch=epoch, epochs=4, batch=b, batches=12,
                         loss=loss + 0.3 * (12 - b) / 12, img_per_s=410.0, elapsed=0.5 * b,
                         **_t(base + b))
        for b in (3, 6, 9, 12)
    ]  # fmt: skip
    end = ev.EpochEnd(stage=stage, epoch=epoch, epochs=4, train_loss=loss, train_acc=train,
                      test_loss=loss + 0.1, test_acc=test, lr=0.1, seconds=6.0, img_per_s=400.0,
                      density=density, **_t(base + 13))  # fmt: skip
    return [*steps, end]


def summary_for(layers: list[dict], kept: int, total: int, quant: dict) -> dict[str, Any]:
    return {
        "status": "finished", "run_dir": RUN_DIR, "model": "vgg16", "dataset": "digits",
        "method": "ecs", "scope": "global", "seed": 0, "target_density": 0.05,
        "density": kept / total, "kept": kept, "total": total, "layers": layers,
        "collapsed_layers": [], "budget": "exact", "epochs_done": 4, "test_acc": 78.1,
        "best_test_acc": 78.1, "quant": {**quant, "int8_test_acc": 77.5},
        "sizes": {"dense_bytes": 943_048, "sparse_bytes": 94_000, "compressed_bytes": 9_100},
    }  # fmt: skip


def mid_epoch(events: list[ev.Event]) -> int:
    """Index just after the second batch_progress of the first training epoch."""
    seen = 0
    for i, e in enumerate(events):
        if isinstance(e, ev.BatchProgress) and e.stage == "train":
            seen += 1
            if seen == 2:
                return i + 1
    raise AssertionError("no training epoch in the canned events")


class CannedRunner:
    """A `pipeline.run` stand-in: yields canned events, may pause (until Stop) or raise."""

    def __init__(self, events: list[ev.Event], pause_at: int | None = None,
                 fail_at: int | None = None) -> None:  # fmt: skip
        self.events, self.pause_at, self.fail_at = events, pause_at, fail_at
        self.config: RunConfig | None = None
        self.resumed: Path | None = None
        self.paused = threading.Event()

    def __call__(
        self, config: RunConfig, stop: threading.Event, resume: Path | None = None
    ) -> Iterator[ev.Event]:
        self.config, self.resumed = config, resume
        for i, event in enumerate(self.events):
            if i == self.fail_at:
                raise RuntimeError("canned failure: CUDA out of memory")
            if i == self.pause_at:
                self.paused.set()
                stop.wait(30)
            if stop.is_set():
                yield ev.RunFinished(status="stopped", test_acc=None, summary={}, seconds=1.0,
                                     **_t(99))  # fmt: skip
                return
            yield event


def _numpy_init(model: Any) -> None:
    """He-normal weights drawn by numpy: the same numbers on every CPU.

    torch's CPU `normal_` picks a vectorised kernel by instruction set, so seeded torch weights
    differ in the last bits between machines, and a magnitude mask at the threshold keeps a
    different weight: one count in the sparsity table changed between this machine and CI's.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                std = np.float32((2.0 / p[0].numel()) ** 0.5)
                p.copy_(torch.from_numpy(rng.standard_normal(p.shape, dtype=np.float32) * std))
            elif name.endswith("weight"):  # batch-norm scale
                p.fill_(1.0)
            else:
                p.copy_(torch.from_numpy(rng.uniform(-0.05, 0.05, p.shape).astype(np.float32)))


def write_finished_run(runs: Path) -> Path:
    """A finished run directory with real weights, masks and quantized weights (no training)."""
    import torch

    from ecs_core.data import load_dataset
    from ecs_core.models import build_model, prunable_weights
    from ecs_core.prune.mask import layer_report, mask_from_scores
    from ecs_core.store import RunStore

    data = load_dataset("digits")
    model = build_model("vgg16", data.num_classes, data.in_channels, CONFIG.width)
    _numpy_init(model)
    weights = prunable_weights(model)
    mask = mask_from_scores({k: w.detach().abs() for k, w in weights.items()}, 0.05, "global")
    with torch.no_grad():
        for k, w in weights.items():
            w.mul_(mask[k])
    path = runs / RUN_NAME
    path.mkdir(parents=True)
    store = RunStore(path)
    store.write_config(CONFIG)
    state = model.state_dict()
    store.save_tensors("model.safetensors", state)
    store.save_tensors("masks.safetensors", {k: m.to(torch.uint8) for k, m in mask.items()})
    # the whole state, as the pipeline saves it (`ecs export` loads it into the model)
    shared = {k: _levels(state[k], mask[k]) if k in mask else v for k, v in state.items()}
    store.save_tensors("quantized.safetensors", shared)
    events = canned_events(layer_report(mask))
    with open(path / "events.jsonl", "w") as f:
        for e in events:
            f.write(json.dumps(e.to_dict()) + "\n")
    store.write_summary(events[-1].summary)  # type: ignore[attr-defined]
    return path


def _levels(w: Any, keep: Any, n: int = 32) -> Any:
    import torch

    kept = w[keep]
    if kept.numel() == 0:
        return w.clone()
    lo, hi = kept.min(), kept.max()
    step = (hi - lo) / (n - 1) if hi > lo else torch.tensor(1.0)
    q = torch.round((w - lo) / step) * step + lo
    return torch.where(keep, q, torch.zeros_like(w))


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_finished_run(tmp_path_factory.mktemp("tui") / "runs")


def copy_run(src: Path, dest: Path, **summary: Any) -> Path:
    """A copy of run `src` at `dest`; `summary` fields replace the copy's summary.json ones
    (and config.json's, for method). `test_shift` moves every epoch's test accuracy."""
    import shutil

    shutil.copytree(src, dest)
    shift = summary.pop("test_shift", 0.0)
    if shift:
        lines = []
        for line in (dest / "events.jsonl").read_text().splitlines():
            e = json.loads(line)
            if e["event"] == "epoch_end":
                e["test_acc"] = round(e["test_acc"] + shift, 2)
            lines.append(json.dumps(e))
        (dest / "events.jsonl").write_text("\n".join(lines) + "\n")
    if "method" in summary:
        config = json.loads((dest / "config.json").read_text())
        (dest / "config.json").write_text(json.dumps({**config, "method": summary["method"]}))
    saved = json.loads((dest / "summary.json").read_text())
    (dest / "summary.json").write_text(json.dumps({**saved, **summary}))
    return dest


def stop_after_epoch(path: Path, epoch: int) -> Path:
    """Make run `path` one that was stopped after `epoch`: its events end there, its summary
    says stopped (as `ecs run` leaves it on Ctrl-C)."""
    kept = []
    for line in (path / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        kept.append(line)
        if e["event"] == "epoch_end" and e["epoch"] == epoch:
            break
    stopped = ev.RunFinished(status="stopped", test_acc=66.4, summary={}, seconds=60.0, **_t(60))
    kept.append(json.dumps(stopped.to_dict()))
    (path / "events.jsonl").write_text("\n".join(kept) + "\n")
    summary = json.loads((path / "summary.json").read_text())
    summary.update(status="stopped", epochs_done=epoch, test_acc=66.4)
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def make_died(path: Path) -> Path:
    """A run whose process was killed half-way through epoch 3: its events stop there, its
    lock file is left and nobody holds it, and there is no summary."""
    lines = (path / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    mid3 = [i for i, e in enumerate(events) if e["event"] == "batch_progress" and e["epoch"] == 3]
    cut = mid3[1]  # the second batch of epoch 3
    (path / "events.jsonl").write_text("\n".join(lines[: cut + 1]) + "\n")
    (path / "summary.json").unlink()
    (path / ".lock").write_text("")
    return path


def resumed_events(after_epoch: int) -> list[ev.Event]:
    """What a resumed run yields: run_started(resumed_from_epoch), then the rest of the run."""
    events = canned_events()
    first = events[0]
    assert isinstance(first, ev.RunStarted)
    start = ev.from_dict({**first.to_dict(), "resumed_from_epoch": after_epoch, "t": T0 + 61})
    i = next(i for i, e in enumerate(events)
             if isinstance(e, ev.EpochEnd) and e.epoch == after_epoch)  # fmt: skip
    return [start, ev.StageStarted(stage="train", epochs=3, **_t(62)), *events[i + 1 :]]


@pytest.fixture(scope="session")
def runs_folder(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of four runs: finished ECS and SNIP, a stopped one and a died one."""
    root = tmp_path_factory.mktemp("folder") / "runs"
    copy_run(finished_run, root / RUN_NAME)
    copy_run(finished_run, root / "20250101-010000-vgg16-digits-snip-d0.05-s0", method="snip",
             test_acc=71.3, best_test_acc=71.3, test_shift=-6.8)  # fmt: skip
    stop_after_epoch(copy_run(finished_run, root / "20250101-020000-vgg16-digits-ecs-d0.05-s1",
                              seed=1), 2)  # fmt: skip
    make_died(copy_run(finished_run, root / "20250101-030000-vgg16-digits-ecs-d0.05-s2"))
    return root


async def workers_done(app: Any) -> None:
    """Every worker finished; one an exclusive worker replaced counts as finished (its
    successor is waited for), rather than failing the wait with WorkerCancelled."""
    from textual.worker import WorkerCancelled

    while True:
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            continue


async def settle(pilot: Pilot) -> None:
    """Wait until background loads are drawn (stats views compute in thread workers)."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        await workers_done(app)
    app.pull(force=True)
    await pilot.pause()
    await workers_done(app)
    await pilot.pause()
    await tables_measured(pilot)


async def tables_measured(pilot: Pilot) -> None:
    """Wait until every DataTable has measured its rows, with no worker left to redraw one.
    Textual's DataTable sizes its columns on its own next idle after rows are added
    (`_on_idle`), so a picture taken in between shows each column as wide as its label, its
    cells cut ("finish 5.00 78.1 77." for "finished 5.00% 78.10% 77.50%": the Runs tab's
    snapshot failed in CI that way, twice). Two clean looks in a row, a pause apart."""
    from textual.widgets import DataTable

    def pending() -> bool:
        tables = pilot.app.screen.query(DataTable)
        return any(t._require_update_dimensions or t._updated_cells for t in tables)

    clean = 0
    for _ in range(100):  # 2 s at most: the picture's comparison says the rest
        await workers_done(pilot.app)
        clean = 0 if pending() else clean + 1
        if clean == 2:
            return
        await pilot.pause(0.02)


@pytest.fixture
def snap_compare(snap_compare: Any, request: pytest.FixtureRequest) -> Any:
    """The plugin's snap_compare, failing with the rows that changed: CI shows the failure
    text, not the HTML report, so a mismatch there must say what differs."""
    from tests.tui.svg_text import difference

    def compare(app: Any, **kw: Any) -> bool:
        if snap_compare(app, **kw):
            return True
        expected, actual = _last_pictures(request.node)
        raise AssertionError(f"the picture changed:\n{difference(expected, actual)}")

    return compare


def _last_pictures(node: pytest.Item) -> tuple[str, str]:
    """(stored, taken) SVGs of `node`'s comparison, from the file the plugin saves for its
    report."""
    import pickle

    from pytest_textual_snapshot import node_to_report_path

    data = pickle.loads(node_to_report_path(node).read_bytes())
    return str(data[1]), str(data[2])


@pytest.fixture(autouse=True)
def no_animations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tabs move their underline on a 20 ms timer and then animate it for 0.3 s: a picture
    taken after a fast settle (the Runs and Log tabs load in milliseconds) could catch it
    half-way (CI did, once). With animations off it moves at the next refresh."""
    from textual import constants

    monkeypatch.setattr(constants, "TEXTUAL_ANIMATIONS", "none")


@pytest.fixture(autouse=True)
def no_machine_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine line shows this process's real CPU use and the clock: not in pictures."""
    from ecs_tui.app import EcsApp

    monkeypatch.setattr(EcsApp, "MACHINE", False)


@pytest.fixture
def tui() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""
    return SimpleNamespace(
        CONFIG=CONFIG, RUN_NAME=RUN_NAME, CannedRunner=CannedRunner, canned_events=canned_events,
        mid_epoch=mid_epoch, settle=settle, copy_run=copy_run, stop_after_epoch=stop_after_epoch,
        make_died=make_died, resumed_events=resumed_events,
    )  # fmt: skip
