"""The app's footer: Textual's, but a key that does not fit whole is hidden, never cut.

At 80 columns the Runs tab's keys and the app's do not all fit; Textual's footer crops the row
mid-word (`s Star▏`). Here each key that would end under the command palette's key (or past the
edge) is made invisible, whole: its place stays (visibility does not change the layout), so the
keys before it do not move, and the help screen (?) lists every key. A key's width is its
rendered text with its padding, border and margin, so the fit does not wait for a layout.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE = "-command-palette"


def cells(widget: Widget) -> int:
    """Columns `widget` takes in the footer's row."""
    styles = widget.styles
    text = widget.render() if isinstance(widget, FooterKey) else None
    inner = text.cell_len if text is not None else widget.outer_size.width
    return inner + styles.gutter.width + styles.margin.width


class KeysFooter(Footer):
    """`Footer` that shows only the keys it can show whole."""

    async def recompose(self) -> None:
        await super().recompose()
        self.fit_keys()

    def on_mount(self) -> None:
        super().on_mount()
        self.call_after_refresh(self.fit_keys)

    def on_resize(self) -> None:
        self.fit_keys()

    def fit_keys(self) -> None:
        """Hide each key (or group of keys) that would end past the room the command palette's
        key leaves."""
        row = [w for w in self.children if not w.has_class(PALETTE)]
        palette = [w for w in self.children if w.has_class(PALETTE)]
        room = (self.size.width or self.app.size.width) - sum(map(cells, palette))
        end = 0
        for widget in row:
            end += cells(widget)
            widget.styles.visibility = "visible" if end <= room else "hidden"
