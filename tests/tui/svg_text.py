"""Snapshot SVGs as terminal text, so a mismatch on CI says what changed (not a test file).

A snapshot SVG draws each run of same-styled characters as a `<text x=.. clip-path=line-N>`;
putting each run back at its column gives the screen's rows, and a unified diff of the two
screens' rows is the failure message. When only colours or weights differ, the message says so
and names the rows whose styles changed.
"""

from __future__ import annotations

import difflib
import html
import re

_TEXT = re.compile(
    r'<text class="([^"]*)" x="([\d.]+)" y="[\d.]+" textLength="([\d.]+)"'
    r' clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>'
)


def screen(svg: str) -> tuple[list[str], list[list[tuple[int, str]]]]:
    """(text rows, per row the (column, style class) of each run) of one snapshot SVG."""
    cells: dict[int, dict[int, str]] = {}
    styles: dict[int, list[tuple[int, str]]] = {}
    runs = [(cls, float(x), float(w), int(n), t) for cls, x, w, n, t in _TEXT.findall(svg)]
    cell = min((w / max(len(html.unescape(t)), 1) for _, _, w, _, t in runs if t), default=1.0)
    for cls, x, _, n, text in runs:
        col = round(x / cell)
        for i, ch in enumerate(html.unescape(text).replace("\xa0", " ")):
            cells.setdefault(n, {})[col + i] = ch
        styles.setdefault(n, []).append((col, cls))
    height = max(cells, default=-1) + 1
    rows = []
    for n in range(height):
        row = cells.get(n, {})
        rows.append("".join(row.get(c, " ") for c in range(max(row, default=-1) + 1)).rstrip())
    return rows, [styles.get(n, []) for n in range(height)]


def difference(expected: str, actual: str, limit: int = 40) -> str:
    """What a user would see change between two snapshot SVGs, in at most `limit` lines."""
    old_rows, old_styles = screen(expected)
    new_rows, new_styles = screen(actual)
    diff = list(difflib.unified_diff(old_rows, new_rows, "snapshot", "now", n=1, lineterm=""))
    if diff:
        more = len(diff) - limit
        return "\n".join(diff[:limit] + ([f"... {more} more lines"] if more > 0 else []))
    changed = [i for i, (a, b) in enumerate(zip(old_styles, new_styles, strict=False)) if a != b]
    return f"same text; styles differ on rows {changed[:20]}"
