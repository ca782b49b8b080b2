"""Log tab: one line per event worth a line (the headless printer's words) and tracebacks."""

from __future__ import annotations

from textual.widgets import RichLog

from ecs_tui.runmodel import Snapshot


class LogView(RichLog):
    """Appends only the lines it has not shown yet; a new run clears it."""

    def __init__(self, **kw: object) -> None:
        super().__init__(
            wrap=True, markup=False, highlight=False, max_lines=5000, min_width=20, **kw
        )
        self.seen = 0

    def show(self, snap: Snapshot, source: object = None) -> None:
        if snap.log_total < self.seen:
            self.clear()
            self.seen = 0
        new = snap.log_total - self.seen
        if new <= 0:
            return
        for line in snap.log[-min(new, len(snap.log)) :]:
            self.write(line)
        self.seen = snap.log_total
