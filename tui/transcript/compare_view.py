"""One prompt under several presets, side by side: a column each (stacked rows when the terminal is narrow)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.containers import Container, Vertical
from textual.message import Message
from textual.widgets import Static

from tfchat.core.engine.stats import GenerationStats
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.transcript.exchange_view import next_view_number
from tfchat.tui.transcript.piece_feed import PieceFeed
from tfchat.tui.transcript.stats_line import stats_line
from tfchat.tui.transcript.streaming import run_for_view
from tfchat.tui.transcript.streaming_text import StreamingText

# A column's border and padding take 4 cells; at 22 its text is 18 wide, about three words a
# line, the narrowest that still reads as prose. Narrower, the columns stack instead: so 2
# presets sit side by side at 80 columns with the sidebar shown, 3 at 100, 5 from about 140.
MIN_COLUMN_WIDTH = 22


def blind_label(index: int) -> str:
    return chr(ord("A") + index)


class CompareColumn(Vertical):
    """A preset's continuation: its name (or a letter, blind), the text as it streams, its stats line."""

    DEFAULT_CSS = """
    CompareColumn { width: 1fr; height: auto; border: round $panel-lighten-2; padding: 0 1; }
    CompareColumn.kept { border: heavy $success; }
    CompareColumn .label { text-style: bold; color: $text-accent; }
    CompareColumn .note { color: $warning; }
    CompareColumn .stats { color: $text-muted; }
    CompareColumn .stats.stopped { color: $warning; }
    CompareColumn .stats.failed { color: $error; }
    """

    def __init__(self, preset: str, label: str):
        super().__init__()
        self.preset = preset
        self.label = label
        self.stats: dict = {}
        self.finish_reason = ""
        self._text = ""  # exactly what the model wrote; the column shows it from its first word
        self._label = Static(Text(label), classes="label")
        self._note = Static(Text(""), classes="note")  # how the column ran, when it says something (a server's)
        self._note.display = False
        self._output = StreamingText()
        self._stats = Static(Text("…"), classes="stats")

    def compose(self):
        yield self._label
        yield self._note
        yield self._output
        yield self._stats

    @property
    def output(self) -> str:
        return self._text

    @property
    def summary_shown(self) -> str:
        """The column's stats line, as shown."""
        return str(self._stats.render()).replace("\u00a0", " ")

    @property
    def note_shown(self) -> str | None:
        return str(self._note.render()) if self._note.display else None

    def note(self, text: str) -> None:
        self._note.update(Text(text))
        self._note.display = True

    @property
    def text_shown(self) -> str:
        """The text the column displays (from its first word)."""
        return self._output.text

    def append(self, text: str) -> None:
        self._text += text
        # The text goes on from the prompt shown above the columns, so it usually begins with a
        # space; in a column of its own that reads as a stray indent.
        self._output.append(text if self._output.text else text.lstrip(" "))

    def finish(self, line: str, state: str = "", stats: dict | None = None, reason: str = "") -> None:
        self.stats, self.finish_reason = stats or {}, reason or state
        self._stats.update(Text(line))
        if state:
            self._stats.add_class(state)

    def finish_with(self, stats: GenerationStats) -> None:
        self.finish(stats_line(stats), "stopped" if stats.finish_reason == "stopped" else "",
                    stats.as_dict(), stats.finish_reason)

    def reveal(self) -> None:
        """Blind columns show their preset once one is kept."""
        if not self.label.endswith(f" · {self.preset}") and self.label != self.preset:
            self.label = f"{self.label} · {self.preset}"
            self._label.update(Text(self.label))


class CompareView(Vertical):
    """The prompt once, then a column per preset; `kept` is the column the session continues from."""

    DEFAULT_CSS = """
    CompareView { height: auto; margin: 0 0 1 0; }
    CompareView .prompt { text-style: bold; color: $text-accent; }
    CompareView .hint { color: $text-muted; }
    CompareView #columns { layout: horizontal; height: auto; }
    CompareView.stacked #columns { layout: vertical; }
    CompareView.stacked CompareColumn { width: 100%; }
    """

    @dataclass
    class RowDone(Message):
        """Column `row` finished (the others may go on)."""

        row: int
        stats: GenerationStats

    @dataclass
    class RowFailed(Message):
        """Column `row` failed (the others may go on)."""

        row: int
        error: str

    @dataclass
    class Done(Message):
        """Every column of the comparison numbered `number` ended; `error` when the batch failed."""

        number: int
        error: str | None = None

    def __init__(self, prompt: str, presets: list[str], blind: bool = False, labels: list[str] | None = None):
        super().__init__()
        self.number = next_view_number()
        self.prompt = prompt
        self.blind = blind
        # A column is named by its preset, or by its model when models are compared (`labels`).
        self.models = labels
        self.model_slots: list[int] = []  # with `labels`: each column's model's place on the app's shelf
        self.columns = [CompareColumn(name, blind_label(i) if blind else (labels[i] if labels else name))
                        for i, name in enumerate(presets)]
        self.kept: int | None = None
        self.context = ""  # what the model was given: the prompt, after the transcript in continue mode
        self.kept_exchange = None  # the exchange made from the kept column
        self.kept_entry: tuple[str, str] | None = None  # its (prompt, output) in the continue context
        self._hint = Static(Text(""), classes="hint")
        self._hint.display = False
        self.generation = None  # the engine's batch: each column's text and stats, from any thread
        self._feed = PieceFeed(self.take)

    def compose(self):
        yield Static(Text(self.prompt), classes="prompt")
        with Container(id="columns"):
            yield from self.columns
        yield self._hint

    def on_resize(self) -> None:
        self.set_class(self.size.width < len(self.columns) * MIN_COLUMN_WIDTH, "stacked")

    @property
    def output(self) -> str:
        """The kept column's text (what copy and continue take), or nothing until one is kept."""
        return self.columns[self.kept].output if self.kept is not None else ""

    def take(self, chunks: list[tuple[int, str]]) -> None:
        """Streamed pieces, each (column, text), in the order they came."""
        for index in {index for index, _ in chunks}:
            self.columns[index].append("".join(piece for i, piece in chunks if i == index))

    # ----- generating -------------------------------------------------------------------
    def generate(self, engine, params: list[SamplingParams], cancel: threading.Event,
                 finished: threading.Event) -> None:
        """Stream one batch, a row per column, each under its params; ends with a Done message."""
        self.generation = None
        self._feed.start(self)
        self._run(engine, params, cancel, finished)

    @work(thread=True, exit_on_error=False, group="generation", description="comparing")
    def _run(self, engine, params: list[SamplingParams], cancel: threading.Event, finished: threading.Event) -> None:
        def stream() -> CompareView.Done:
            batch = self.generation = engine.generate_batch([self.context] * len(params), params, cancel)
            for event in batch:
                if event.piece:
                    self._feed.put((event.row, event.piece))
                if event.stats is not None:
                    self.post_message(self.RowDone(event.row, event.stats))
                elif event.error is not None:  # one model's failure (`ModelsBatch`): that column's line
                    self.post_message(self.RowFailed(event.row, event.error))
            return self.Done(self.number)

        run_for_view(self, finished, stream, lambda error: self.Done(self.number, error), "generation")

    @on(RowDone)
    def _row_done(self, message: RowDone) -> None:
        message.stop()
        self._feed.drain()
        self.columns[message.row].finish_with(message.stats)
        self._note_row(message.row)

    @on(RowFailed)
    def _row_failed(self, message: RowFailed) -> None:
        message.stop()
        self._feed.drain()
        self.columns[message.row].finish(message.error, "failed", reason="failed")

    @on(Done)
    def _streamed(self, message: Done) -> None:
        self._feed.stop()
        if message.error:
            for column in self.columns:
                if not column.finish_reason:
                    column.finish(message.error, "failed", reason="failed")
            return
        # Every row's stats are the batch's by now, whether or not an event carried them here.
        final = getattr(self.generation, "stats", None) or []
        for row, (column, stats) in enumerate(zip(self.columns, final)):
            if not column.finish_reason and stats is not None:
                column.finish_with(stats)
                self._note_row(row)

    def _note_row(self, row: int) -> None:
        """What the backend said of how the row ran (a server that could not take everything asked)."""
        notice = self.generation.notices[row]  # set: its rows' ends are what call this
        if notice and self.columns[row].note_shown is None:
            self.columns[row].note(notice)

    def all_done(self, keep_key: str) -> None:
        self._hint.update(Text(f"{keep_key} keeps a column as the exchange the session continues from"))
        self._hint.display = True

    def keep(self, index: int) -> CompareColumn:
        if self.kept is not None:
            self.columns[self.kept].remove_class("kept")
        self.kept = index
        column = self.columns[index]
        column.add_class("kept")
        if self.blind:
            for each in self.columns:
                each.reveal()
        self._hint.update(Text(f"kept: {column.label} · the session continues from it"))
        self._hint.display = True
        return column
