"""The key bar: the app's shown bindings in their order of importance, as many as fit.

One line where every key fits on it, else two (three below 50 columns): a wider
terminal never shows fewer keys than a narrower one. `f1 palette` always shows,
since the palette lists every key. A key is never cut in half.
"""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

GAP = "  "
PALETTE = ("f1", "palette")


def lines_for(items: list[tuple[str, str]], width: int) -> int:
    if width < 50:
        return 3
    return 1 if sum(len(row) for row in fit_keys(items, width, 1)) == len(items) + 1 else 2


def fit_keys(items: list[tuple[str, str]], width: int, lines: int) -> list[list[tuple[str, str]]]:
    """Items laid out on at most `lines` lines of `width`, in order; what does not fit is left out.

    The palette item is always placed last, and room is kept for it.
    """
    rows: list[list[tuple[str, str]]] = [[]]
    used = [0]

    def size(item) -> int:
        return len(item[0]) + 1 + len(item[1])

    def place(item, reserve: int) -> bool:
        needed = size(item) + (len(GAP) if rows[-1] else 0)
        last_line = len(rows) == lines
        if used[-1] + needed + (reserve if last_line else 0) <= width:
            rows[-1].append(item)
            used[-1] += needed
            return True
        if not last_line and size(item) + (reserve if len(rows) + 1 == lines else 0) <= width:
            rows.append([item])
            used.append(size(item))
            return True
        return False

    reserve = size(PALETTE) + len(GAP)
    for item in items:
        place(item, reserve)
    place(PALETTE, 0)
    return rows


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom; height: auto; max-height: 3; padding: 0 1;
        background: $footer-background; color: $footer-description-foreground;
    }
    """

    def __init__(self, bindings: list[Binding], **kwargs):
        super().__init__(**kwargs)
        self._bindings = bindings  # the screen's shown keys, in their order of importance

    def on_mount(self) -> None:
        self._show()

    def on_resize(self) -> None:
        self._show()

    def _items(self) -> list[tuple[str, str]]:
        return [(b.key_display or self.app.get_key_display(b), b.description.lower())
                for b in self._bindings]

    def _show(self) -> None:
        width = max(self.size.width, 20)  # the content width, inside the padding
        items = self._items()
        text = Text()
        for number, row in enumerate(fit_keys(items, width, lines_for(items, width))):
            if number:
                text.append("\n")
            for i, (key, label) in enumerate(row):
                if i:
                    text.append(GAP)
                text.append(key, style="bold")
                text.append(" " + label)
        self.update(text)
