"""TensorBoard logs of a run, written from its events (a consumer, like the printers).

`TensorBoardLog(logdir).handle(event)` turns the engine's event stream into TensorBoard data
through PyTorch's `SummaryWriter`:

* scalars per epoch (step = the run's epoch): `loss/train`, `loss/test`, `accuracy/train`,
  `accuracy/test`, `lr`, `density`, `img_per_s` (centroid fine-tuning under `finetune/...`);
* the per-layer density after pruning, as a Markdown table (`pruning/layers`, TEXT tab);
* weight histograms of every prunable layer before and after weight sharing
  (`weights_before_sharing/...`, `weights_after_sharing/...`; non-zero values only: the pruned
  zeros would be one spike hiding the rest), read from the run directory's files at the end.

`RunConfig.tensorboard` makes `pipeline.run` log while it runs (`logged`); `write_run` does the
same afterwards from a run directory's events.jsonl (`ecs tensorboard`). tensorboard is
imported only when a log is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecs_core import events as ev
from ecs_core.config import INSTALL_EXTRA as INSTALL_HINT

SCALARS = (("train_loss", "loss/train"), ("test_loss", "loss/test"),
           ("train_acc", "accuracy/train"), ("test_acc", "accuracy/test"), ("lr", "lr"),
           ("density", "density"), ("img_per_s", "img_per_s"))  # fmt: skip
"""EpochEnd field -> scalar tag."""


class TensorBoardError(RuntimeError):
    """tensorboard is missing or the log folder cannot be written."""


def summary_writer(logdir: str | Path) -> Any:
    """PyTorch's SummaryWriter on `logdir`; TensorBoardError naming the install line."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TensorBoardError(f"--tensorboard needs tensorboard: {INSTALL_HINT}") from None
    try:
        return SummaryWriter(log_dir=str(logdir))
    except OSError as exc:
        raise TensorBoardError(f"cannot write TensorBoard logs to {logdir}: {exc}") from None


class TensorBoardLog:
    """Consumer of one run's events; `close()` adds the weight histograms and flushes."""

    def __init__(self, logdir: str | Path, run_dir: str | Path | None = None) -> None:
        self.writer = summary_writer(logdir)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.last_epoch = 0
        self._closed = False

    def handle(self, event: ev.Event) -> None:
        w = self.writer
        if isinstance(event, ev.RunStarted):
            self.run_dir = self.run_dir or Path(event.run_dir)
            text = json.dumps(event.config, indent=1, default=str)
            w.add_text("config", "    " + text.replace("\n", "\n    "), 0)
        elif isinstance(event, ev.EpochEnd):
            finetune = event.stage == ev.FINETUNE
            step = event.epoch if not finetune else self.last_epoch + event.epoch
            self.last_epoch = max(self.last_epoch, event.epoch) if not finetune else self.last_epoch
            for field, tag in SCALARS:
                value = getattr(event, field)
                if value is not None:
                    w.add_scalar(f"finetune/{tag}" if finetune else tag, float(value), step)
        elif isinstance(event, ev.Pruned):
            w.add_text("pruning/layers", density_table(event), self.last_epoch)
            w.add_scalar("pruning/achieved_density", event.density, self.last_epoch)
        elif isinstance(event, ev.MaskUpdated):  # SET, RigL: turnover per update, by step
            w.add_scalar("mask/moved", event.moved, event.step)
            w.add_scalar("mask/turnover", event.moved / max(1, event.kept), event.step)
            w.add_scalar("mask/drop_fraction", event.drop_fraction, event.step)
        elif isinstance(event, ev.Quantized):
            for field in ("test_acc", "int8_test_acc"):
                if getattr(event, field) is not None:
                    w.add_scalar(f"quantized/{field}", getattr(event, field), self.last_epoch)

    def close(self) -> None:
        """Weight histograms from the run directory (once), then flush and close the files."""
        if self._closed:
            return
        self._closed = True
        if self.run_dir is not None:
            self._histograms()
        self.writer.flush()
        self.writer.close()

    def _histograms(self) -> None:
        from ecs_core.store import RunStore, StoreError

        store = RunStore(self.run_dir)  # type: ignore[arg-type]
        for name, tag in (("model.safetensors", "weights_before_sharing"),
                          ("quantized.safetensors", "weights_after_sharing")):  # fmt: skip
            if not (store.path / name).exists():
                continue
            try:
                tensors = store.load_tensors(name)
            except StoreError:
                continue
            for key, t in tensors.items():
                if t.is_floating_point() and t.dim() in (2, 4):  # conv and linear weights
                    values = t[t != 0].float()
                    if values.numel():
                        layer = key.removesuffix(".weight")
                        self.writer.add_histogram(f"{tag}/{layer}", values, self.last_epoch)


def density_table(event: ev.Pruned) -> str:
    """The per-layer density of a Pruned event as a Markdown table."""
    lines = [f"achieved density {event.density:.2%} (target {event.target_density:.2%}), "
             f"{event.method}, {event.scope}", "", "| layer | params | kept | density |",
             "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for r in event.layers:
        name = str(r.get("name", "")).removesuffix(".weight")
        lines.append(f"| {name} | {r.get('params', 0):,} | {r.get('kept', 0):,} | "
                     f"{r.get('density', 0):.2%} |")  # fmt: skip
    return "\n".join(lines)


def logged(events: Iterator[ev.Event], logdir: str | Path) -> Iterator[ev.Event]:
    """Pass `events` through, logging each to TensorBoard (what `RunConfig.tensorboard` does)."""
    log = TensorBoardLog(logdir)
    try:
        for event in events:
            log.handle(event)
            yield event
    finally:
        log.close()


def write_run(run_dir: str | Path, logdir: str | Path) -> int:
    """The TensorBoard log of an existing run directory, from its events; epochs written."""
    from ecs_core.store import RunStore

    log = TensorBoardLog(logdir, run_dir)
    epochs = set()
    try:
        for event in RunStore(run_dir).read_events():
            log.handle(event)
            if isinstance(event, ev.EpochEnd) and event.stage != ev.FINETUNE:
                epochs.add(event.epoch)
    finally:
        log.close()
    return len(epochs)
