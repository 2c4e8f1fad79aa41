"""The history browser: search past exchanges, read one whole, send its prompt again, copy its output."""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tfchat.core.errors import HistoryError
from tfchat.core.store.history import Conversation, Exchange
from tfchat.tui.state.conversation import title_shown
from tfchat.tui.widgets.notice_row import NoticeRow


def when(created_at: float, now: float) -> str:
    """The time for today's exchanges, else the day: the list keeps its width for the prompts."""
    day = time.strftime("%Y-%m-%d", time.localtime(created_at)) == time.strftime("%Y-%m-%d", time.localtime(now))
    return time.strftime("%H:%M" if day else "%m-%d", time.localtime(created_at))


def result_line(exchange: Exchange, preset_width: int, now: float) -> Text:
    """One line of the list: when, the preset, how it was made (unless a plain prompt), the prompt."""
    prompt = exchange.prompt.strip()
    line = Text(f"{when(exchange.created_at, now)} {exchange.preset:<{preset_width}} ")
    if exchange.kind != "prompt":
        line.append(f"{exchange.kind} ", style="italic")
    line.append(prompt.splitlines()[0] if prompt else "(continued)")
    return line


@dataclass(frozen=True)
class HistoryChoice:
    """A past prompt picked in the browser: sent again at once, or put in the prompt box to edit; or
    (`conversation`) the conversation it belongs to, to reopen."""

    prompt: str
    send: bool
    conversation: int | None = None


class HistoryScreen(ModalScreen[HistoryChoice | None]):
    """Dismissed with the prompt picked, or None."""

    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 95%; height: 90%; border: round $accent; background: $surface; }
    HistoryScreen Input { margin: 0 0 1 0; }
    HistoryScreen #results { width: 3fr; height: 1fr; border: none; text-wrap: nowrap; text-overflow: ellipsis; }
    HistoryScreen #preview-box { width: 2fr; height: 1fr; border-left: solid $accent 40%; padding: 0 1; }
    HistoryScreen #hint { color: $text-muted; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+o", "copy_output", "Copy output", priority=True),
        Binding("ctrl+e", "edit", "Edit first", priority=True),
        Binding("ctrl+r", "reopen", "Reopen its conversation", priority=True),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, history):
        super().__init__()
        self.history = history
        self.found: list[Exchange] = []
        self._conversations: dict[int, Conversation | None] = {}  # read once each, as the preview shows them

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="search prompts and outputs", id="search")
            with Horizontal():
                yield OptionList(id="results")
                with VerticalScroll(id="preview-box"):
                    yield Static(id="preview")
            yield NoticeRow()
            yield Static("type to search · ↑/↓ choose · enter sends it again · ctrl+e edits it first · "
                         "ctrl+r reopens its conversation · ctrl+o copies the output · esc closes", id="hint")

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
        now, width = time.time(), max((len(e.preset) for e in self.found), default=0)
        for exchange in self.found:
            results.add_option(Option(result_line(exchange, width, now)))
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
        conversation = self._conversation_of(exchange)
        if conversation is not None:
            text.append(f"“{title_shown(conversation.title)}” · {conversation.exchanges} exchange"
                        f"{'s' if conversation.exchanges != 1 else ''} · ctrl+r reopens it\n", style="bold")
        text.append(f"#{exchange.id} · {exchange.kind} · {exchange.preset} · {exchange.finish_reason} · "
                    f"{stats.get('new_tokens')} tokens\n\n", style="dim")
        text.append(exchange.prompt, style="bold")
        text.append(exchange.output)
        preview.update(text)

    def _conversation_of(self, exchange: Exchange) -> Conversation | None:
        """The conversation the exchange belongs to, with its title; None for one kept before conversations."""
        if exchange.conversation is None:
            return None
        if exchange.conversation not in self._conversations:
            try:
                self._conversations[exchange.conversation] = self.history.conversation(exchange.conversation)
            except HistoryError:
                return None
        return self._conversations[exchange.conversation]

    def action_reopen(self) -> None:
        exchange = self.selected()
        if exchange is None:
            return
        if exchange.conversation is None:
            self.notify("That exchange was kept before conversations were; enter sends its prompt again.",
                        severity="warning")
            return
        self.dismiss(HistoryChoice(exchange.prompt, send=False, conversation=exchange.conversation))

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
        self._choose(send=True)

    def action_edit(self) -> None:
        self._choose(send=False)

    def _choose(self, send: bool) -> None:
        exchange = self.selected()
        if exchange is not None and exchange.prompt.strip():
            self.dismiss(HistoryChoice(exchange.prompt, send))

    def action_close(self) -> None:
        self.dismiss(None)
