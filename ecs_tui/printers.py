"""Headless consumers of the event stream: JSON lines, plain lines, or a Rich live display."""

from __future__ import annotations

import json
from typing import IO, Any

from ecs_core import events as ev
from ecs_core.config import spread_word
from ecs_tui.fmt import size_ratio, spread_text


def make_printer(as_json: bool, out: IO[str]) -> Any:
    """--json -> JsonPrinter; a TTY -> RichPrinter; otherwise one plain line per epoch."""
    if as_json:
        return JsonPrinter(out)
    if out.isatty():
        return RichPrinter()
    return PlainPrinter(out)


class JsonPrinter:
    """Every event as one JSON object per line, nothing else on stdout."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def handle(self, event: ev.Event) -> None:
        self.out.write(json.dumps(event.to_dict()) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


def _length(config: dict[str, Any]) -> str:
    """`15 epochs`; for IMP `6 epochs per round, 3 rounds: 21 epochs`."""
    from ecs_core.config import RunConfig

    try:
        cfg = RunConfig.from_dict(config)
        rounds = len(cfg.rounds)
    except (ValueError, TypeError):  # a config from elsewhere: say what it says
        return f"{config.get('epochs')} epochs"
    if not rounds:
        return f"{cfg.epochs} epochs"
    return f"{cfg.epochs} epochs per round, {rounds} rounds: {cfg.total_epochs} epochs"


def describe(event: ev.Event) -> str | None:
    """One human line for the events worth a line (None for batch progress)."""
    match event:
        case ev.RunStarted():
            c = event.config
            return (
                f"run {event.run_dir}: {c['model']} x{c['width']:g} on {c['dataset']}, "
                f"{c['method']} to density {c['density']:g} ({spread_text(c)}), {_length(c)}, "
                f"{event.device}, {event.params:,} params, {event.train_size} train / "
                f"{event.test_size} test images"
                + (
                    f", resumed after epoch {event.resumed_from_epoch}"
                    if event.resumed_from_epoch
                    else ""
                )
            )
        case ev.EpochEnd():
            return (
                f"[{event.stage}{f' r{event.round}' if event.round else ''}] epoch "
                f"{event.epoch}/{event.epochs}  loss {event.train_loss:.4f}  "
                f"train {event.train_acc:.2f}%  test {event.test_acc:.2f}%  "
                f"(loss {event.test_loss:.4f})  lr {event.lr:.4g}  {event.img_per_s:,.0f} img/s  "
                f"{event.seconds:.1f}s"
            )
        case ev.Pruned():
            line = (
                (f"round {event.round}/{event.rounds}: " if event.rounds else "")
                + f"pruned ({event.method}, "
                f"{spread_word(event.distribution)}, "
                f"budget {event.budget}"
                f"{'' if event.ablate == 'none' else ', ablate ' + event.ablate}): kept "
                f"{event.kept:,}/{event.total:,} = {event.density:.2%} "
                f"(target {event.target_density:.2%}) in {event.seconds:.2f}s"
            )
            if event.overlap:
                o = event.overlap
                line += (
                    f"; by |w| and |g|: {o['both']:,}, |w| only: {o['weight_only']:,}, "
                    f"|g| only: {o['grad_only']:,}"
                )
            if event.collapsed_layers:
                line += f"; COLLAPSED: {', '.join(event.collapsed_layers)}"
            if event.channels and event.macs and event.dense_macs:
                kept = ", ".join(f"{k} {n}" for k, n in event.channels.items())
                line += (
                    f"\n  channels kept per group: {kept}\n  MACs per image "
                    f"{event.macs / 1e6:,.1f}M of {event.dense_macs / 1e6:,.1f}M dense "
                    f"({event.dense_macs / event.macs:.2f}x fewer)"
                )
            return line
        case ev.MaskUpdated():
            return (
                f"mask moved {event.moved:,} of {event.kept:,} connections after step "
                f"{event.step} (epoch {event.epoch}, drop fraction {event.drop_fraction:.3f})"
            )
        case ev.LatencyMeasured():
            from ecs_core.stats.summary import speed_lines

            return "\n".join(speed_lines({"latency": event.latency}))
        case ev.Quantized():
            line = (
                f"quantized ({2**event.bits} clusters/layer): unique weights "
                f"{event.unique_before:,} -> {event.unique_after:,}"
            )
            if event.test_acc is not None:
                line += f"; shared-weight test {event.test_acc:.2f}%"
            if event.int8_test_acc is not None:
                line += f"; int8 test {event.int8_test_acc:.2f}%"
            return line
        case ev.Exported():
            ratio = size_ratio(event.dense_bytes, event.compressed_bytes) or 0.0
            return (
                f"exported {event.path}: {event.compressed_bytes:,} bytes "
                f"({ratio:.1f}x smaller than dense fp32 {event.dense_bytes:,})"
            )
        case ev.Log():
            return f"{event.level}: {event.message}"
        case ev.RunFinished():
            acc = f"{event.test_acc:.2f}%" if event.test_acc is not None else "n/a"
            return f"{event.status}: test accuracy {acc} in {event.seconds:.1f}s"
        case ev.RunFailed():
            return f"failed: {event.error}: {event.message}"
    return None


class SilentPrinter:
    """Prints nothing: ranks other than 0 of a torchrun job (rank 0 speaks for the run)."""

    def handle(self, event: ev.Event) -> None:
        pass

    def close(self) -> None:
        pass


class PlainPrinter:
    """For log files: one line per epoch and per stage event, no carriage returns."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def handle(self, event: ev.Event) -> None:
        line = describe(event)
        if line is not None:
            self.out.write(line + "\n")
            self.out.flush()

    def close(self) -> None:
        pass


class RichPrinter:
    """On a TTY: epoch and batch bars with ETA, img/s, loss, accuracy and lr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console()
        self.progress = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            refresh_per_second=4,
        )
        self.progress.start()
        self.epoch_task = None
        self.batch_task = None
        self.last_epoch = ""

    def handle(self, event: ev.Event) -> None:
        p = self.progress
        if isinstance(event, ev.BatchProgress):
            if self.epoch_task is None:
                self.epoch_task = p.add_task("epochs", total=event.epochs, info="")
                self.batch_task = p.add_task("batches", total=event.batches, info="")
            p.update(self.epoch_task, total=event.epochs, completed=event.epoch - 1,
                     description=f"{event.stage} epoch", info=self.last_epoch)  # fmt: skip
            p.update(self.batch_task, total=event.batches, completed=event.batch,
                     info=f"loss {event.loss:.4f}  {event.img_per_s:,.0f} img/s")  # fmt: skip
            return
        if isinstance(event, ev.EpochEnd):
            self.last_epoch = (
                f"test {event.test_acc:.2f}%  loss {event.train_loss:.4f}  lr {event.lr:.4g}"
            )
            if self.epoch_task is not None:
                p.update(self.epoch_task, completed=event.epoch, info=self.last_epoch)
        line = describe(event)
        if line is not None:
            p.console.print(line, highlight=False, markup=False)

    def close(self) -> None:
        self.progress.stop()
