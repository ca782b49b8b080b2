"""A yes/no question in a modal (stop, quit while a run is active, resume, delete)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

MIN_WIDTH = 50
FRAME = 6
"""The box's border (1 + 1) and padding (2 + 2) around the question."""


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True on y / Yes, False on n / No / Esc.

    The box is as wide as the question's longest line (at least `MIN_WIDTH`, at most the
    screen), and a line longer than the screen folds: a run name or a command in the question
    is shown whole, for the user to copy."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(
                    f"{self.yes} (y)",
                    id="confirm-yes",
                    compact=True,
                    variant="error" if self.danger else "primary",
                )
                yield Button("No (n)", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        longest = max(map(len, self.question.splitlines()), default=0)
        self.query_one("#confirm-box").styles.width = max(MIN_WIDTH, longest + FRAME)
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
