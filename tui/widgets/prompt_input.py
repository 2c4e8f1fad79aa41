"""The prompt pane: multi-line input; Enter sends, ctrl+j adds a line, up/down recall.

Typed characters are inserted in batches: a paste in a terminal without bracketed paste (or
over a slow link) arrives as one key event per character, and TextArea re-wraps the whole
line on every insert, so inserting them one by one costs time proportional to the text per
key (a 200 KB paste took minutes). Characters that arrive together are inserted as one edit.
"""
from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual._time import get_time  # the clock Textual stamps events with
from textual.message import Message
from textual.timer import Timer
from textual.widgets import TextArea

from tfchat.tui.terminal.editor import edit_text
from tfchat.tui.terminal.keys import alt_digit

# Inserts at most this often while keys keep arriving: a paste of any size costs a bounded
# number of edits per second, and typing by hand (slower than this) is never delayed.
BURST_INSERT_INTERVAL = 0.05
BURST_GAP = 0.01  # keys read closer together than this were not typed by a person (auto-repeat is ~0.03 s)
LONGEST_UNDRAWN = 1.0  # while a paste is still arriving, the pane is redrawn at least this often

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
        self._typed: list[str] = []  # characters received but not yet inserted
        self._insert_timer: Timer | None = None
        self._last_insert = 0.0
        self._last_key_read = 0.0  # when the terminal driver read the newest key
        self._in_burst = False

    def edit_in_editor(self) -> str | None:
        """f4: the prompt in $EDITOR, taken back when it exits; why not, when it could not run."""
        edited, problem = edit_text(self.app, self.text)
        if problem:
            return problem
        self.load_text(edited)
        self.move_cursor(self.document.end)
        self.focus()
        return None

    def load_for_editing(self, text: str) -> None:
        """A past prompt, to change before sending: the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)
        self.focus()

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
        if event.is_printable and not self.read_only:
            self._stop(event)
            self._type(event.character, event.time)
            return
        self.insert_typed()  # every other key acts on the text typed before it
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

    def type_key(self, event: events.Key) -> None:
        """Types a printable key that reached the screen instead of this widget."""
        if not self.read_only:
            self._type(event.character, event.time)

    def _type(self, text: str, read_at: float) -> None:
        self._typed.append(text)
        self._in_burst = read_at - self._last_key_read < BURST_GAP
        self._last_key_read = read_at
        if self._insert_timer is None and len(self._typed) == 1:
            wait = self._last_insert + BURST_INSERT_INTERVAL - get_time()
            if wait <= 0:
                self.call_later(self.insert_typed)  # a key typed by hand shows at once
            else:
                # Keys arriving faster than a person types: gather them into the next insert.
                self._insert_timer = self.set_timer(wait, self._insert_when_burst_ends)

    def _insert_when_burst_ends(self) -> None:
        """Inserts the gathered keys, or keeps gathering while a paste is still arriving.

        Each insert and redraw costs time proportional to the line's length, so during a burst
        the pane is redrawn about once a second and the keys in between cost only their handling.
        """
        self._insert_timer = None
        arriving = self._in_burst and get_time() - self._last_key_read < BURST_INSERT_INTERVAL
        if arriving and get_time() - self._last_insert < LONGEST_UNDRAWN:
            self._insert_timer = self.set_timer(BURST_INSERT_INTERVAL, self._insert_when_burst_ends)
            return
        self.insert_typed()

    def insert_typed(self) -> None:
        """Puts the keys received but not yet inserted into the text; `text` is whole after it."""
        if self._insert_timer is not None:
            self._insert_timer.stop()
            self._insert_timer = None
        if not self._typed:
            return
        typed = "".join(self._typed)
        self._typed.clear()
        start, end = self.selection
        self.replace(typed, start, end, maintain_selection_offset=False)
        self._last_insert = get_time()
        # The pane's size follows the new text only at the next layout: scroll to the cursor then.
        self.call_after_refresh(self.scroll_cursor_visible)

    async def _on_paste(self, event: events.Paste) -> None:
        if self.read_only:
            return
        self._stop(event)
        self._type(event.text, event.time)  # a raw paste comes as many pastes: gathered like keys

    @staticmethod
    def _stop(event: events.Event) -> None:
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
