"""The output pane: each exchange's prompt, its streaming continuation, then its stats."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

_MEASURE = Console(width=80, legacy_windows=False, force_terminal=False)


class StreamingText(Vertical):
    """Text that grows at its end, re-laid out only when its height can change.

    A layout pass costs the whole screen, so finished lines (up to the last
    newline) live in one widget updated per newline, and the line being written
    in another whose layout is redone only when its wrapped height changes.
    """

    DEFAULT_CSS = """
    StreamingText { height: auto; }
    StreamingText > Static { height: auto; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.text = ""
        self._done = Static(Text(""))
        self._live = Static(Text(""))
        self._live_rows = 0
        self._done.display = False

    def compose(self):
        yield self._done
        yield self._live

    def append(self, piece: str) -> None:
        self.text += piece
        cut = self.text.rfind("\n") + 1
        if "\n" in piece:
            self._done.display = cut > 0
            self._done.update(Text(self.text[: cut - 1]))  # layout: its height changed
        live = self.text[cut:]
        rows = self._rows(live)
        self._live.update(Text(live), layout=rows != self._live_rows)
        self._live_rows = rows

    def _rows(self, line: str) -> int:
        width = self._live.content_region.width or self.size.width
        if width <= 0 or not line:
            return 1
        return len(Text(line).wrap(_MEASURE, width))


class ExchangeView(Vertical):
    DEFAULT_CSS = """
    ExchangeView { height: auto; margin: 0 0 1 0; }
    ExchangeView .prompt { color: $text-accent; text-style: bold; }
    ExchangeView .output { color: $text; }
    ExchangeView .stats { color: $text-muted; }
    ExchangeView .stats.stopped { color: $warning; }
    ExchangeView .stats.failed { color: $error; }
    """

    def __init__(self, prompt: str, preset: str):
        super().__init__()
        self.prompt = prompt
        self.preset = preset
        self.generation_start = 0  # where the latest generation's text begins in `output`
        self._prompt = Static(Text(f"> {prompt}" if prompt else "> (continued)"), classes="prompt")
        self._output = StreamingText(classes="output")
        self._stats = Static(Text("…"), classes="stats")

    def compose(self):
        yield self._prompt
        yield self._output
        yield self._stats

    @property
    def output(self) -> str:
        return self._output.text

    def mark_generation_start(self) -> None:
        self.generation_start = len(self.output)
        self._stats.update(Text("…"))
        self._stats.remove_class("stopped", "failed")

    def new_output(self) -> str:
        return self.output[self.generation_start :]

    def append(self, text: str) -> None:
        self._output.append(text)

    def finish(self, line: str, state: str = "") -> None:
        self._stats.update(Text(line))
        if state:
            self._stats.add_class(state)


class Notice(Static):
    DEFAULT_CSS = """
    Notice { margin: 0 0 1 0; color: $text-muted; }
    Notice.error { color: $error; }
    """


class Transcript(VerticalScroll):
    DEFAULT_CSS = """
    Transcript { height: 1fr; padding: 0 1; }
    """

    def on_mount(self) -> None:
        # Anchored: stays at the bottom as text streams in, until the user scrolls
        # up; scrolling back to the bottom (or sending a prompt) follows again.
        self.anchor()

    def add_exchange(self, prompt: str, preset: str) -> ExchangeView:
        view = ExchangeView(prompt, preset)
        self.mount(view)
        return view

    def add_notice(self, text: str, error: bool = False) -> Notice:
        notice = Notice(Text(text), classes="error" if error else "")
        self.mount(notice)
        self.scroll_end(animate=False)
        return notice

    def clear(self) -> None:
        self.remove_children()

    def exchanges(self) -> list[ExchangeView]:
        return list(self.query(ExchangeView))

    def as_markdown(self, model_path) -> str:
        parts = [f"# tfchat transcript\n\nModel: `{model_path}`\n"]
        for view in self.exchanges():
            parts.append(f"## Prompt ({view.preset})\n\n```text\n{view.prompt}\n```\n\n"
                         f"### Output\n\n```text\n{view.output}\n```\n")
        return "\n".join(parts)
