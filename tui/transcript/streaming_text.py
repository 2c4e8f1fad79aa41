"""Text that grows at its end as it streams, after a styled prefix (the prompt), at a frame's cost."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

_MEASURE = Console(width=80, legacy_windows=False, force_terminal=False)


class StreamingText(Vertical):
    """A styled prefix (the prompt) and text that grows at its end, as one flowing text.

    A layout pass costs the whole screen, so finished lines (up to the last
    newline) live in one widget updated per newline, and the line being written
    in another whose layout is redone only when its wrapped height changes.
    """

    DEFAULT_CSS = """
    StreamingText { height: auto; }
    StreamingText > Static { height: auto; }
    """

    def __init__(self, prefix: str = "", prefix_style: str = "bold", **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix
        self.prefix_style = prefix_style
        self.text = ""  # what was streamed, without the prefix
        self._done = Static(Text(""))
        self._live = Static(Text(""))
        self._live_rows = 0
        self._done.display = False
        self._override: Text | None = None  # a styled view of the whole text, shown instead while set

    def compose(self):
        yield self._done
        yield self._live

    def on_mount(self) -> None:
        self._show(relayout_done=True)

    def append(self, piece: str) -> None:
        self.text += piece
        self._show(relayout_done="\n" in piece)

    def set_text(self, text: str) -> None:
        self.text = text
        self._show(relayout_done=True)

    @property
    def shown(self) -> str:
        """The plain text on screen now: the prompt prefix and the output, as one text."""
        return str(self._done.render()) + str(self._live.render())

    @property
    def styled(self) -> Text | None:
        """The styled view shown instead of the plain text (the probability view), else None."""
        return self._override

    def show_styled(self, output: Text | None) -> None:
        """Show the prefix and `output` (the text, styled) instead of the plain text; None goes back."""
        self._override = None if output is None else Text(self.prefix, style=self.prefix_style) + output
        self._show(relayout_done=True)

    def _show(self, relayout_done: bool) -> None:
        if self._override is not None:
            self._done.display, self._live.display = True, False
            self._done.update(self._override)
            return
        self._live.display = True
        full = self.prefix + self.text
        cut = full.rfind("\n") + 1
        if relayout_done:
            self._done.display = cut > 0
            self._done.update(self._styled(full, 0, max(cut - 1, 0)))  # layout: its height changed
        live = full[cut:]
        rows = self._rows(live)
        self._live.update(self._styled(full, cut, len(full)), layout=rows != self._live_rows)
        self._live_rows = rows

    def _styled(self, full: str, start: int, end: int) -> Text:
        """full[start:end], with the part that belongs to the prefix in the prefix's style."""
        text = Text(full[start:end])
        prefix_end = min(len(self.prefix), end) - start
        if prefix_end > 0:
            text.stylize(self.prefix_style, 0, prefix_end)
        return text

    def _rows(self, line: str) -> int:
        width = self._live.content_region.width or self.size.width
        if width <= 0 or not line:
            return 1
        return len(Text(line).wrap(_MEASURE, width))
