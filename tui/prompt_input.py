"""The prompt pane: multi-line input; Enter sends, ctrl+j adds a line, up/down recall."""
from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from tui.keys import alt_digit

NEWLINE_KEYS = ("ctrl+j", "shift+enter")  # ctrl+j is a distinct byte (LF) in every terminal and in tmux


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: round $accent 50%;
    }
    PromptInput:focus { border: round $accent; }
    """

    @dataclass
    class Submitted(Message):
        text: str

    def __init__(self, recall: list[str] | None = None, **kwargs):
        super().__init__(soft_wrap=True, show_line_numbers=False, **kwargs)
        self._recall = list(recall or [])
        self._recall_at: int | None = None  # index into _recall while browsing
        self._draft = ""

    def remember(self, text: str) -> None:
        if not self._recall or self._recall[-1] != text:
            self._recall.append(text)
        self._recall_at = None

    async def _on_key(self, event: events.Key) -> None:
        # Textual calls this class's handler, then TextArea's unless prevent_default().
        key = event.key
        if alt_digit(key, event.character) is not None:
            event.prevent_default()  # a preset shortcut, not text: bubble it to the app untyped
            return
        if key == "enter":
            self._stop(event)
            self._submit()
        elif key in NEWLINE_KEYS:
            self._stop(event)
            self.insert("\n")
        elif key == "up" and self.cursor_location[0] == 0 and self._recall:
            self._stop(event)
            self._browse(-1)
        elif key == "down" and self.cursor_location[0] == self.document.line_count - 1 and self._recall_at is not None:
            self._stop(event)
            self._browse(+1)
        # Anything else falls through: Textual then runs TextArea._on_key itself.

    @staticmethod
    def _stop(event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    def _submit(self) -> None:
        text = self.text
        if not text.strip():
            self.clear()  # nothing to send, and nothing left behind
            return
        self.remember(text)
        self.clear()
        self.post_message(self.Submitted(text))

    def _browse(self, step: int) -> None:
        if self._recall_at is None:
            if step > 0:
                return
            self._draft = self.text
            self._recall_at = len(self._recall)
        self._recall_at += step
        if self._recall_at < 0:
            self._recall_at = 0
            return
        if self._recall_at >= len(self._recall):
            self._recall_at = None
            self.load_text(self._draft)
        else:
            self.load_text(self._recall[self._recall_at])
        # Land where the next up/down keeps browsing: older goes up from the top line.
        self.move_cursor((0, 0) if step < 0 else self.document.end)
