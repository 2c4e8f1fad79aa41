"""The overlap view: the last output (or each column of a comparison) with every span copied from the
training text marked by its length, kept up to date while the text streams; a span's first occurrence
in the corpus, with its line and how often it occurs, below."""
from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from tfchat.core.corpus.copied_spans import DEFAULT_MIN_TOKENS, Overlap
from tfchat.core.engine.tokenizer import character_offsets
from tfchat.tui.widgets.copied_text import length_legend, marked_text
from tfchat.tui.widgets.text_scroll import keep_offset_in_sight

REFRESH_S = 0.3  # while the text streams: the view follows it a few times a second


class OverlapScreen(Screen[None]):
    DEFAULT_CSS = """
    OverlapScreen #title { height: auto; background: $accent 30%; padding: 0 1; }
    OverlapScreen #text-box { height: 2fr; padding: 0 1; }
    OverlapScreen #legend, OverlapScreen #summary { height: auto; padding: 0 1; }
    OverlapScreen #summary { color: $text-muted; }
    OverlapScreen #detail-box { height: 1fr; padding: 0 1; border-top: solid $accent 40%; }
    OverlapScreen #hint { height: auto; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("right", "move(1)", "Span →", show=False, priority=True),
        Binding("left", "move(-1)", "Span ←", show=False, priority=True),
        Binding("tab", "next_source", "Column", show=False, priority=True),
    ]

    def __init__(self, sources: Callable[[], list[tuple[str, str]]], corpus, min_tokens: int = DEFAULT_MIN_TOKENS):
        """`sources()`: (label, text) of what to hold against the corpus, read again while it streams (an
        exchange's output, or each column of a comparison); `corpus`: a core.corpus TrainingText."""
        super().__init__()
        self.sources, self.corpus, self.min_tokens = sources, corpus, min_tokens
        self.source = 0
        self.selected = 0
        self.found: Overlap | None = None
        self._shown_text: str | None = None
        self._offsets: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with VerticalScroll(id="text-box"):
            yield Static(id="text")
        yield Static(length_legend(self.min_tokens), id="legend")
        yield Static(id="summary")
        with VerticalScroll(id="detail-box"):
            yield Static(id="detail")
        yield Static("←/→ copied span · tab next column of a comparison · esc back", id="hint")

    def on_mount(self) -> None:
        self._refresh()
        self.set_interval(REFRESH_S, self._refresh)

    def _refresh(self) -> None:
        """Compare the text again when it changed (it streams), keeping the selected span where it was."""
        sources = self.sources()
        if not sources:
            return
        self.source %= len(sources)
        label, text = sources[self.source]
        if text == self._shown_text:
            return
        self._shown_text = text
        encoding = self.corpus.encoding
        ids = encoding.encode(text, disallowed_special=())
        self.found = self.corpus.overlap(ids, self.min_tokens)
        self._offsets = character_offsets(encoding, ids)
        self.selected = min(self.selected, max(len(self.found.spans) - 1, 0))
        column = f" · {label} ({self.source + 1} of {len(sources)}, tab: next)" if len(sources) > 1 else f" · {label}"
        self.query_one("#title", Static).update(Text(f"Copied from {self.corpus.path.name}{column}"))
        self.query_one("#summary", Static).update(Text(self.found.summary()))
        self._show()

    def _show(self) -> None:
        found, text = self.found, self._shown_text or ""
        spans = found.spans if found else []
        marked = marked_text(text, self._offsets, spans, self.selected if spans else None)
        self.query_one("#text", Static).update(marked)
        detail = self.query_one("#detail", Static)
        if not spans:
            detail.update(Text(f"No run of {self.min_tokens} or more tokens of this text occurs in "
                               f"{self.corpus.path.name}.", style="dim"))
            return
        span = spans[self.selected]
        self.call_after_refresh(keep_offset_in_sight, self.query_one("#text-box", VerticalScroll),
                                self.query_one("#text", Static), marked, self._offsets[span.start], self.app.console)
        times = f"{span.occurrences} time{'s' if span.occurrences != 1 else ''}"
        about = Text(f"span {self.selected + 1} of {len(spans)} · {span.end - span.start} tokens · occurs {times} "
                     f"in the corpus · first at line {span.line}:\n", style="bold")
        around = self.corpus.around(span)
        at = around.find(span.text)
        if at >= 0:
            about.append(around[:at])
            about.append(span.text, style="reverse")
            about.append(around[at + len(span.text):])
        else:
            about.append(around)
        detail.update(about)

    def action_move(self, step: int) -> None:
        if self.found and self.found.spans:
            self.selected = (self.selected + step) % len(self.found.spans)
            self._show()

    def action_next_source(self) -> None:
        self.source += 1
        self._shown_text = None
        self.selected = 0
        self._refresh()

    def action_close(self) -> None:
        self.dismiss(None)
