"""The model inspector: the file, its h_params, every tensor (the chapter's 20.6), memory and the last speed."""
from __future__ import annotations

import time
from functools import partial

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tfchat.core.settings.weights_choice import weights_label
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.position_table import position_heatmap


def size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def load_summary(card: dict, startup: str | None = None) -> str | None:
    """One line for the transcript once a local model is ready: how long it took and what it holds,
    and the start-up (`core.system.startup`). For a server, which loads nothing here, the start-up alone."""
    if card.get("load_seconds") is None:
        return f"Connected to {card.get('model', 'the model')}: {startup}" if startup else None
    name = card.get("file", "?").rsplit("/", 1)[-1]
    parameters = card.get("parameter_count", 0)
    line = (f"Loaded {name} in {card['load_seconds']:.1f} s: {parameters / 1e6:.1f}M parameters, "
            f"{size(card.get('process_resident_bytes'))} resident ({card.get('device', '?')})")
    if card.get("h_params_source") == "inferred from the tensors":
        line += f" · {card.get('layout', '')}; h_params inferred from the tensors (f8 shows them)"
    return line + (f"; {startup}" if startup else "")


def labelled(lines: Text, label: str, value: str) -> None:
    lines.append(f"{label:<18}", style="bold")
    lines.append(value + "\n")


def server_card_text(card: dict, tokens_per_s: float | None) -> tuple[Text, Text]:
    """A model behind --endpoint: what its server says of it, and where its weights are."""
    lines = Text()
    line = partial(labelled, lines)
    line("server", card["server"])
    line("model", card.get("model", "?"))
    line("owned by", card.get("owned_by", "not reported"))
    if card.get("created"):
        line("created", time.strftime("%Y-%m-%d %H:%M", time.localtime(card["created"])))
    line("context length", f"{card['context_length']} tokens" if card.get("context_length") else "not reported")
    count = card.get("parameter_count")
    line("parameters", f"{count:,}" if count else "not reported")
    line("last speed", f"{tokens_per_s:.1f} tok/s" if tokens_per_s else "no generation yet")
    if card.get("startup"):
        line("start-up", card["startup"])
    weights = Text("The weights live on the server: this app holds none of them, so there are no tensors to list "
                   "here. `tfchat info --model FILE` on the server's machine lists them.", style="italic")
    return lines, weights


def card_text(card: dict, tokens_per_s: float | None) -> tuple[Text, Table | Text]:
    """The summary lines and the tensor table."""
    if card.get("server"):
        return server_card_text(card, tokens_per_s)
    lines = Text()
    line = partial(labelled, lines)
    line("file", card.get("file", "?"))
    if card.get("layout"):
        line("format", card["layout"])
    line("size on disk", size(card.get("file_bytes")))
    line("stored as", ", ".join(card.get("stored_dtypes", [])))
    line("device", card.get("device", "?"))
    line("parameters", f"{card.get('parameter_count', 0):,}")
    weights = weights_label(card.get("weights", "exact"))
    if weights:
        line("weights", weights + " (rounded at load: not the book's model)")
    line("weights resident", size(card.get("resident_bytes")) + (" (as the engine holds them)" if weights
                                                                 else " (float32, as the engine holds them)"))
    line("engine process", size(card.get("process_resident_bytes")) + " resident now")
    if card.get("load_seconds") is not None:
        line("loaded in", f"{card['load_seconds']:.1f} s")
    line("last speed", f"{tokens_per_s:.1f} tok/s" if tokens_per_s else "no generation yet")
    if card.get("startup"):
        line("start-up", card["startup"])
    source = card.get("h_params_source")
    line("h_params", ", ".join(f"{k}={v}" for k, v in card.get("h_params", {}).items())
         + (f" ({source})" if source and source != "stored in the file" else ""))
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    table.add_column("tensor")
    table.add_column("shape")
    table.add_column("dtype")
    for name, shape, dtype in card.get("tensors", []):
        table.add_row(name, str(list(shape)), dtype)
    return lines, table


class InspectorScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    InspectorScreen { align: center middle; }
    InspectorScreen > Vertical { width: 95%; height: 90%; border: round $accent; background: $surface; }
    InspectorScreen #summary { padding: 0 1; }
    InspectorScreen VerticalScroll { height: 1fr; border-top: solid $accent 40%; padding: 0 1; }
    InspectorScreen #hint { color: $text-muted; height: 1; padding: 0 1; }
    InspectorScreen #positions { margin: 1 0 0 0; }
    """
    BINDINGS = [Binding("escape", "close", "Close"), Binding("f8", "close", show=False),
                Binding("p", "jump('#positions')", "Positions"), Binding("t", "jump('#tensors')", "Tensors")]

    def __init__(self, card: dict, tokens_per_s: float | None):
        super().__init__()
        self.card = card
        self.tokens_per_s = tokens_per_s

    def compose(self) -> ComposeResult:
        summary, table = card_text(self.card, self.tokens_per_s)
        with Vertical():
            yield Static(summary, id="summary")
            with VerticalScroll():
                yield Static(table, id="tensors")
                yield Static(id="positions")
            yield NoticeRow()
            yield Static("↑/↓ pgup/pgdn scroll · t tensors · p positional encoding · esc closes", id="hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self.call_after_refresh(self._show_positions)

    def on_resize(self) -> None:
        self._show_positions()

    def _show_positions(self) -> None:
        """The book's positional-encoding table, for a model whose shape is known here (not a server's)."""
        shape = self.card.get("h_params", {})
        d_model, window = shape.get("d_model"), shape.get("context_length")
        positions = self.query_one("#positions", Static)
        if not (isinstance(d_model, int) and isinstance(window, int) and d_model > 0 and window > 0):
            positions.display = False
            return
        if self.card.get("positions", "sinusoidal") != "sinusoidal":
            positions.update(Text("positions: learned (a GPT-2's wpe table): trained values, not the book's "
                                  "sine and cosine formula"))
            return
        width = self.query_one(VerticalScroll).content_region.width or 80
        positions.update(position_heatmap(window, d_model, width))

    def action_jump(self, selector: str) -> None:
        self.query_one(VerticalScroll).scroll_to_widget(self.query_one(selector, Static), animate=False, top=True)

    def action_close(self) -> None:
        self.dismiss(None)
