"""The history browser: search past exchanges, read one whole, send its prompt again, copy its output."""
from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from core.errors import HistoryError
from core.store.history import Exchange
from tui.notice_row import NoticeRow


class HistoryScreen(ModalScreen[str | None]):
    """Dismissed with a prompt to send again, or None."""

    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 95%; height: 90%; border: round $accent; background: $surface; }
    HistoryScreen Input { margin: 0 0 1 0; }
    HistoryScreen #results { width: 2fr; height: 1fr; border: none; }
    HistoryScreen #preview-box { width: 3fr; height: 1fr; border-left: solid $accent 40%; padding: 0 1; }
    HistoryScreen #hint { color: $text-muted; height: 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+o", "copy_output", "Copy output", priority=True),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, history):
        super().__init__()
        self.history = history
        self.found: list[Exchange] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="search prompts and outputs", id="search")
            with Horizontal():
                yield OptionList(id="results")
                with VerticalScroll(id="preview-box"):
                    yield Static(id="preview")
            yield NoticeRow()
            yield Static("type to search · up/down choose · enter sends the prompt again · ctrl+o copies the "
                         "output · esc closes", id="hint")

    def on_mount(self) -> None:
        self._search("")
        self.query_one(Input).focus()

    @on(Input.Changed, "#search")
    def _typed(self, event: Input.Changed) -> None:
        self._search(event.value)

    def _search(self, words: str) -> None:
        try:
            self.found = self.history.search(words.strip())
        except HistoryError as exc:
            self.found = []
            self.query_one("#preview", Static).update(Text(str(exc), style="red"))
        results = self.query_one(OptionList)
        results.clear_options()
        for exchange in self.found:
            when = time.strftime("%m-%d %H:%M", time.localtime(exchange.created_at))
            first_line = exchange.prompt.strip().splitlines()[0] if exchange.prompt.strip() else "(continued)"
            results.add_option(Option(f"{when} {exchange.preset:<9} {first_line[:60]}"))
        if self.found:
            results.highlighted = 0
        self._preview()

    @on(OptionList.OptionHighlighted, "#results")
    def _highlighted(self) -> None:
        self._preview()

    @on(OptionList.OptionSelected, "#results")
    def _selected(self) -> None:
        self._send()

    @on(Input.Submitted, "#search")
    def _enter_in_search(self) -> None:
        self._send()

    def selected(self) -> Exchange | None:
        index = self.query_one(OptionList).highlighted
        return self.found[index] if index is not None and 0 <= index < len(self.found) else None

    def _preview(self) -> None:
        exchange = self.selected()
        preview = self.query_one("#preview", Static)
        if exchange is None:
            preview.update(Text("No exchange matches." if self.history.search("", 1) else "No history yet."))
            return
        stats = exchange.stats or {}
        text = Text()
        text.append(f"#{exchange.id} · {exchange.preset} · {exchange.finish_reason} · "
                    f"{stats.get('new_tokens')} tokens\n\n", style="dim")
        text.append(exchange.prompt, style="bold")
        text.append(exchange.output)
        preview.update(text)

    def action_move(self, step: int) -> None:
        results = self.query_one(OptionList)
        if self.found:
            current = results.highlighted or 0
            results.highlighted = max(0, min(len(self.found) - 1, current + step))

    def action_copy_output(self) -> None:
        exchange = self.selected()
        if exchange is not None:
            self.app.copy_to_clipboard(exchange.output)
            self.notify(f"Copied {len(exchange.output)} characters (OSC 52).")

    def _send(self) -> None:
        exchange = self.selected()
        if exchange is not None and exchange.prompt.strip():
            self.dismiss(exchange.prompt)

    def action_close(self) -> None:
        self.dismiss(None)
