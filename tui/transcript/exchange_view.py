"""One exchange in the transcript: the prompt and its continuation as one text, its branches, a note
when the window cropped it, its stats; and the worker that streams a generation into it."""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from tfchat.core.engine.stats import GenerationStats
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.state.branches import Branch, GenerationRun
from tfchat.tui.transcript.piece_feed import PieceFeed
from tfchat.tui.transcript.stats_line import SEPARATOR, joined
from tfchat.tui.transcript.streaming import run_for_view
from tfchat.tui.transcript.streaming_text import StreamingText
from tfchat.tui.widgets.token_view import styled_tokens

# Alternatives recorded for every generated token: what the token cursor's panel shows.
TOP_LOGPROBS = 10
_NUMBERS = itertools.count(1)


def next_view_number() -> int:
    """A number for a new view of the transcript: how requests, messages and the session name it."""
    return next(_NUMBERS)


class ExchangeView(Vertical):
    """One exchange: the prompt and its continuation as one text, a note when the window cropped it, stats."""

    DEFAULT_CSS = """
    ExchangeView { height: auto; margin: 0 0 1 0; }
    ExchangeView .output { color: $text; }
    ExchangeView .note { color: $warning; }
    ExchangeView .stats { color: $text-muted; }
    ExchangeView .stats.stopped { color: $warning; }
    ExchangeView .stats.failed { color: $error; }
    """

    @dataclass
    class Done(Message):
        """The generation streaming into the view numbered `number` ended: its stats, or why it failed."""

        number: int
        stats: GenerationStats | None
        error: str | None = None
        steps: list = field(default_factory=list)  # StepInfo per new token

    def __init__(self, prompt: str, preset: str):
        super().__init__()
        self.number = next_view_number()
        self.prompt = prompt
        self.preset = preset
        self.kept_from_comparison = False  # made from a compare column (f7): continued under its own preset
        self.base_context: str | None = None  # what the model was given before the first output: branches start there
        self.branches: list[Branch] = [Branch()]
        self.branch_index = 0
        self.generation_start = 0  # where the latest generation's text begins in `output`
        self.probabilities_shown = False
        self.token_bytes = None  # id -> bytes, set by whoever shows probabilities
        self._note = Static(Text(""), classes="note")
        self._note.display = False
        self._output = StreamingText(prefix=prompt, classes="output")
        self._stats = Static(Text("…"), classes="stats")
        self.generation = None  # the engine's generation streaming here: its text and stats, from any thread
        self._feed = PieceFeed(self.take)

    def compose(self):
        yield self._note
        yield self._output
        yield self._stats

    def on_mount(self) -> None:
        accent = self.app.theme_variables.get("text-accent") or "cyan"
        self._output.prefix_style = f"bold {accent}"

    @property
    def branch(self) -> Branch:
        return self.branches[self.branch_index]

    @property
    def output(self) -> str:
        return self._output.text

    @property
    def shown_text(self) -> str:
        """The prompt and its continuation as the pane shows them."""
        return self._output.shown

    @property
    def styled_text(self) -> Text | None:
        """The probability view's coloured text while it is on, else None."""
        return self._output.styled

    @property
    def note_shown(self) -> str | None:
        """The note above the exchange (the window cropped its context), None when there is none."""
        return str(self._note.render()) if self._note.display else None

    @property
    def summary_shown(self) -> str:
        """The stats line under the exchange, as shown (with the branch count when there are several)."""
        return str(self._stats.render()).replace("\u00a0", " ")

    @property
    def params(self) -> dict:  # of the latest generation, for /save
        return self.branch.params

    @property
    def stats(self) -> dict:
        return self.branch.stats

    @property
    def finish_reason(self) -> str:
        return self.branch.finish_reason

    def mark_generation_start(self, params: dict, kind: str, preset: str) -> None:
        """A generation begins at the end of the text: its own run, for /save."""
        self.generation_start = len(self.output)
        self.branch.params = params
        self.branch.runs.append(GenerationRun(self.generation_start, kind, preset, params))
        self._stats.update(Text("…"))
        self._stats.remove_class("stopped", "failed")

    def new_output(self) -> str:
        return self.output[self.generation_start :]

    def note(self, text: str) -> None:
        self._note.update(Text(text))
        self._note.display = True

    def append(self, text: str) -> None:
        self._output.append(text)
        self.branch.output = self._output.text

    def take(self, chunks: list[str]) -> None:
        """Streamed pieces, in the order they came."""
        self.append("".join(chunks))

    def finish(self, line: str, state: str = "", stats: dict | None = None, reason: str = "") -> None:
        branch = self.branch
        branch.summary, branch.stats, branch.finish_reason = line, stats or {}, reason or state
        if branch.runs:
            branch.runs[-1].stats, branch.runs[-1].finish_reason = branch.stats, branch.finish_reason
        self._show_summary(state)
        self._refresh_probabilities()

    def finish_with(self, stats: GenerationStats, preset: str) -> None:
        """The summary line of a generation that ended, in the history's word for how it ended; after
        a continuation or on a branch it counts the text's tokens in all as well as the new ones."""
        self.branch.tokens += stats.new_tokens
        self.finish(joined(*stats.figures(self.branch.tokens), preset, stats.finish_reason),
                    "stopped" if stats.finish_reason == "stopped" else "",
                    stats=stats.as_dict(), reason=stats.finish_reason)

    def _show_summary(self, state: str = "") -> None:
        branch = self.branch
        count = f"branch {self.branch_index + 1}/{len(self.branches)}" if len(self.branches) > 1 else ""
        self._stats.update(Text(joined(count) + SEPARATOR + branch.summary if count else branch.summary))
        self._stats.remove_class("stopped", "failed")
        state = state or ("stopped" if branch.finish_reason == "stopped" else
                          "failed" if branch.finish_reason == "failed" else "")
        if state:
            self._stats.add_class(state)

    # ----- branches ---------------------------------------------------------------
    def add_branch(self, branch: Branch) -> None:
        """Make `branch` (its text still to come) the one shown."""
        self.branches.append(branch)
        self.show_branch(len(self.branches) - 1)
        self.generation_start = 0

    def show_branch(self, index: int) -> None:
        self.branch_index = index
        self._output.set_text(self.branch.output)
        self._show_summary()
        self._refresh_probabilities()

    # ----- the probability view -----------------------------------------------------
    def show_probabilities(self, shown: bool, token_bytes) -> None:
        self.probabilities_shown, self.token_bytes = shown, token_bytes
        self._refresh_probabilities()

    def _refresh_probabilities(self) -> None:
        branch = self.branch
        if not self.probabilities_shown or not branch.steps or self.token_bytes is None:
            self._output.show_styled(None)
            return
        self._output.show_styled(styled_tokens(self.output, branch.steps, branch.spans(self.token_bytes)))

    # ----- generating -------------------------------------------------------------------
    def generate(self, engine, context: str, params: SamplingParams, cancel: threading.Event,
                 finished: threading.Event, forced: tuple[int, ...] = ()) -> None:
        """Stream `engine`'s continuation of `context` into this view; ends with a Done message."""
        self.generation = None
        self._feed.start(self)
        self._run(engine, context, params, cancel, finished, forced)

    @work(thread=True, exit_on_error=False, group="generation", description="generating")
    def _run(self, engine, context: str, params: SamplingParams, cancel: threading.Event,
             finished: threading.Event, forced: tuple[int, ...]) -> None:
        # Off the UI thread: text goes through the feed and a posted message, never waiting for the UI.
        def stream() -> ExchangeView.Done:
            generation = self.generation = engine.generate(context, params, cancel, TOP_LOGPROBS, forced)
            if generation.notice:  # e.g. a server that does not take every sampler of the preset
                self.app.call_from_thread(self.note, generation.notice)
            for piece in generation:
                self._feed.put(piece)
            return self.Done(self.number, generation.stats, steps=generation.steps)

        run_for_view(self, finished, stream, lambda error: self.Done(self.number, None, error), "generation")

    @on(Done)
    def _streamed(self) -> None:
        self._feed.stop()  # every piece is shown before the screen, next in line, finishes the exchange

    def forget_steps(self) -> None:
        """Drop the per-token records (about 1.5 KB a token); the text stays."""
        if any(branch.steps for branch in self.branches):
            for branch in self.branches:
                branch.steps, branch.segments = [], []
            self.show_probabilities(False, None)
