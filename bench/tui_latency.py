"""Key press to handled-and-drawn latency in `ecs-tui` while a CPU run trains in its worker.

The app runs headless (Textual's pilot driver) with the real pipeline training VGG16 on digits
in the worker thread. Each sample sends one key event straight to the driver, exactly as a
terminal would, switching between the Overview and Curves tabs (so every press also redraws a
view, plots included), and stops the clock after the screen refresh that follows the action
(`call_after_refresh`). The same presses with no run in progress are the reference. (Pilot's
`press()` cannot be timed: it waits for the process to go idle, which a training process never
does.)

The second row opens the Kernels and Activations tabs while the run trains (each time after a
new epoch, so the view really recomputes: weights read, a forward pass for the activations) and
measures the time to the first draw and the training speed while the view loads, against the
speed just before.

Run alone: `python -m bench.tui_latency [--quick]`.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

GOAL_S = 0.100  # DESIGN.md: a key press is handled and drawn within 100 ms (p95)
LOAD_GOAL_S = 1.0  # issue 17: a Kernels/Activations tab draws within 1 s while a run trains
SLOWDOWN_GOAL = 0.10  # ... and training loses at most 10% of its speed while it loads
WINDOW_S = 3.0
"""Training speed is measured over this long before the key press and from it on: progress
moves a batch at a time (~0.4 s here), so a shorter window is mostly rounding."""
TRAIN = {"width": 0.5, "epochs": 50, "method": "random", "quantize": False, "batch_size": 128}


def _bench_app(runs_dir: str) -> Any:
    """EcsApp that timestamps the screen refresh after each tab switch."""
    from ecs_core.config import RunConfig
    from ecs_tui.app import EcsApp

    class BenchApp(EcsApp):
        done: asyncio.Event | None = None
        drawn_at = 0.0
        pending = False

        def action_show_view(self, name: str) -> None:
            self.pending = True
            super().action_show_view(name)

        def pull(self, force: bool = False) -> None:
            super().pull(force)
            if self.pending and force:  # the forced pull after a tab switch redraws the view
                self.pending = False
                self.call_after_refresh(self._mark_drawn)

        def _mark_drawn(self) -> None:
            self.drawn_at = time.perf_counter()
            if self.done is not None:
                self.done.set()

    return BenchApp(config=RunConfig(runs_dir=runs_dir, **TRAIN))


async def _press(app: Any, key: str) -> float:
    """Seconds from the key event entering the driver to the refresh after its action."""
    from textual import events

    app.done = asyncio.Event()
    t0 = time.perf_counter()
    app._driver.send_message(events.Key(key, key))  # what a terminal does
    await asyncio.wait_for(app.done.wait(), timeout=10)
    return app.drawn_at - t0


async def _samples(n: int, training: bool) -> tuple[list[float], float | None, float]:
    """n latencies (alternating tabs 2 and 1, 50-150 ms apart), the img/s meanwhile, and the
    median process CPU seconds per press (idle: the UI's own cost, whatever the machine load)."""
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as runs:
        app = _bench_app(runs)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete(list(app.workers))  # the plot module preload
            if training:
                await pilot.press("s")
                while app.state.snapshot().batch < 2:
                    await asyncio.sleep(0.05)
            out, cpu = [], []
            for i in range(n):
                c0 = time.process_time()
                out.append(await _press(app, "2" if i % 2 == 0 else "1"))
                cpu.append(time.process_time() - c0)
                await asyncio.sleep(rng.uniform(0.05, 0.15))
            speed = app.state.snapshot().img_per_s if training else None
            app.stop_event.set()
            while app.running:
                await asyncio.sleep(0.05)
    return out, speed, statistics.median(cpu)


def _progress(app: Any) -> float:
    """Training progress in images (epoch + batch fraction, times the training set size)."""
    snap = app.state.snapshot()
    frac = snap.batch / snap.batches if snap.batches else 0.0
    return (snap.epoch + frac) * (snap.train_size or 0)


async def _rate(app: Any, seconds: float) -> float:
    p0, t0 = _progress(app), time.perf_counter()
    await asyncio.sleep(seconds)
    return (_progress(app) - p0) / (time.perf_counter() - t0)


async def _tab_loads(n: int) -> list[tuple[str, float, float, float]]:
    """(view, seconds to first draw, img/s from the key on, img/s just before): n tab openings
    and, between them, n controls ("control", 0, ...) timed the same way with no key pressed
    (the second window holds the next epoch's evaluation either way)."""
    from textual import events

    from ecs_tui.widgets import statsview

    drawn: list[tuple[str, float]] = []
    original = statsview.StatsView._draw_sized

    def stamped(self: Any) -> None:
        original(self)
        drawn.append((type(self).__name__, time.perf_counter()))

    statsview.StatsView._draw_sized = stamped  # type: ignore[method-assign]
    out = []
    try:
        with tempfile.TemporaryDirectory() as runs:
            app = _bench_app(runs)
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                await app.workers.wait_for_complete(list(app.workers))
                await pilot.press("s")
                for i in range(2 * n):  # even: open a tab; odd: the same timing, no key
                    tabs = [("5", "KernelsView"), ("6", "ActivationsView")]
                    tab, name = tabs[(i // 2) % 2] if i % 2 == 0 else (None, "control")
                    epoch = app.state.snapshot().epoch
                    while app.state.snapshot().epoch == epoch:  # a new epoch: new weights
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.3)  # past the epoch's evaluation
                    before = await _rate(app, WINDOW_S)
                    seen, p0, t0 = len(drawn), _progress(app), time.perf_counter()
                    t1 = t0
                    if tab is not None:
                        app._driver.send_message(events.Key(tab, tab))
                        while not any(v == name for v, _ in drawn[seen:]):
                            await asyncio.sleep(0.01)
                        t1 = next(t for v, t in drawn[seen:] if v == name)
                    if time.perf_counter() - t0 < WINDOW_S:  # the same window as before
                        await asyncio.sleep(WINDOW_S - (time.perf_counter() - t0))
                    during = (_progress(app) - p0) / (time.perf_counter() - t0)
                    out.append((name, t1 - t0, during, before))
                    if tab is not None:
                        app._driver.send_message(events.Key("1", "1"))
                    await pilot.pause()
                app.stop_event.set()
                while app.running:
                    await asyncio.sleep(0.05)
    finally:
        statsview.StatsView._draw_sized = original  # type: ignore[method-assign]
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """p95 latency while training, against the same presses on an idle app."""
    from bench.common import load_average, row

    n = 20 if quick else 80
    idle, _, ui_cpu = asyncio.run(_samples(n, training=False))
    busy, speed, _ = asyncio.run(_samples(n, training=True))
    ref_s, ours_s = p95(idle), p95(busy)
    note = (
        f"p50 {statistics.median(busy) * 1000:.0f} ms, p95 {ours_s * 1000:.0f} ms, "
        f"max {max(busy) * 1000:.0f} ms over {n} presses (tabs 1/2, each redraws a view) while "
        f"VGG16 x{TRAIN['width']} trained on digits at {speed or 0:,.0f} img/s in the worker; "
        f"idle p50 {statistics.median(idle) * 1000:.0f} ms; the UI's own CPU per press (idle) "
        f"{ui_cpu * 1000:.0f} ms; load average {load_average()} on {os.cpu_count()} cores"
    )
    loads = asyncio.run(_tab_loads(4 if quick else 8))
    opened = [r for r in loads if r[0] != "control"]
    worst = max(t for _, t, _, _ in opened)

    def kept(rows_: list) -> float:  # speed from the key on / speed before, averaged
        return statistics.fmean(d / b for _, _, d, b in rows_ if b > 0)

    slowdown = 1 - kept(opened) / kept([r for r in loads if r[0] == "control"])
    load_note = (
        "; ".join(f"{v.removesuffix('View')} {t * 1000:.0f} ms" for v, t, _, _ in opened)
        + f"; speed in the {WINDOW_S:g} s from the key on / the {WINDOW_S:g} s before: "
        f"{kept(opened):.3f} with a tab opened, "
        f"{kept([r for r in loads if r[0] == 'control']):.3f} without (controls, same timing); "
        f"training VGG16 x{TRAIN['width']} on digits; load average {load_average()}"
    )
    return [
        row(
            what="Kernels / Activations tab opened while a CPU run trains: first draw (worst)",
            reference="controls: the same timing, no key pressed",
            reference_s=None,
            ours_s=worst,
            ratio=None,
            goal=f"first draw ≤ {LOAD_GOAL_S:.0f} s, training slowdown ≤ {SLOWDOWN_GOAL:.0%} "
            f"(measured {slowdown:+.0%})",
            met=worst <= LOAD_GOAL_S and slowdown <= SLOWDOWN_GOAL,
            note=load_note,
        ),
        row(
            what="TUI key press handled and drawn, CPU run training in the worker (p95)",
            reference="same presses, no run (idle app)",
            reference_s=ref_s,
            ours_s=ours_s,
            ratio=ref_s / ours_s,
            goal=f"p95 ≤ {GOAL_S * 1000:.0f} ms",
            met=ours_s <= GOAL_S,
            note=note,
        ),
    ]


if __name__ == "__main__":
    from bench.common import plain_table

    print(plain_table(rows(quick="--quick" in sys.argv)))
