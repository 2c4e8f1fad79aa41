"""The chat's notices (mode changed, column kept, nothing to copy): a row of their own above the
prompt, shown for a few seconds. A toast would sit over the status line and the prompt, the very
fields such a notice is about."""
from __future__ import annotations

from rich.errors import MarkupError
from rich.text import Text
from textual.widgets import Static

SHOWN_S = 5.0


class NoticeRow(Static):
    DEFAULT_CSS = """
    NoticeRow { height: auto; max-height: 3; padding: 0 1; color: $text-muted; display: none; }
    NoticeRow.warning { color: $warning; }
    NoticeRow.error { color: $error; }
    """

    def __init__(self, **kwargs):
        super().__init__(Text(""), **kwargs)
        self.message = ""
        self._hide_timer = None

    def show(self, message: str, severity: str = "information", seconds: float | None = None,
             markup: bool = False) -> None:
        """`markup`: render the message's tags (Textual's own notices, `Press [b]ctrl+q[/b]`); only where it
        closes one, so a file or model name with brackets in it is shown as it is."""
        rendered = Text(message)
        if markup and "[/" in message:
            try:
                rendered = Text.from_markup(message)
            except MarkupError:
                pass
        self.message = rendered.plain
        self.update(rendered)
        self.set_class(severity == "warning", "warning")
        self.set_class(severity == "error", "error")
        self.display = True
        if self._hide_timer is not None:
            self._hide_timer.stop()
        self._hide_timer = self.set_timer(SHOWN_S if seconds is None else seconds, self.hide)

    def hide_warning(self) -> None:
        """Hide a warning that a request just sent makes stale ('nothing to score' under a score that runs)."""
        if self.display and (self.has_class("warning") or self.has_class("error")):
            self.hide()

    def hide(self) -> None:
        self.display = False
        self.message = ""
