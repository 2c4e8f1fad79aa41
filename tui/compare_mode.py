"""Compare mode: each prompt goes to several presets at once, decoded in one batch, shown side by side.

A mixin of the app: f6 (or `/compare`) turns it on; every prompt sent while it
is on becomes a `CompareView`, one column per preset, fed by the engine's
`generate_batch`. Escape stops every column. f7 keeps a column: it becomes the
exchange the session continues from. Every column goes to the history with its
preset.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from textual import work
from textual.message import Message

from core.decode.limits import MAX_ROWS
from core.errors import TfchatError, describe_exception
from core.engine.stats import GenerationStats
from tui.compare_view import CompareView
from tui.session import CompareRequest
from tui.slash_commands import slash_command
from tui.status_line import StatusLine
from tui.transcript import Transcript

KEEP_KEY = "f7"


@dataclass
class CompareRowDone(Message):
    row: int
    stats: GenerationStats


@dataclass
class CompareDone(Message):
    error: str | None = None


def stats_line(stats: GenerationStats) -> str:
    return (f"{stats.new_tokens} tokens · {stats.tokens_per_s:.1f} tok/s · ttft {stats.ttft_s * 1000:.0f} ms · "
            f"{stats.finish_reason}")


class CompareMixin:
    compare_presets: list[str] | None = None  # None: compare mode is off
    compare_blind: bool = False

    # ----- turning it on and off --------------------------------------------------------
    def action_toggle_compare(self) -> None:
        if self.compare_presets:
            self.set_compare(None)
        else:
            self.set_compare(self.catalog.names()[:MAX_ROWS])

    def set_compare(self, presets: list[str] | None, blind: bool = False) -> None:
        self.compare_presets, self.compare_blind = presets, blind
        # Blind: the names stay hidden until a column is kept.
        shown = f"{len(presets)} presets, blind" if blind else ", ".join(presets) if presets else ""
        self.query_one(StatusLine).compare = shown
        if presets:
            self.notify(f"Compare mode: each prompt goes to {shown}. f6 turns it off.")
        else:
            self.notify("Compare mode off: prompts go to the active preset.")

    def compare_request(self, prompt: str) -> CompareRequest:
        presets = list(self.compare_presets)
        if self.compare_blind:
            random.shuffle(presets)  # blind: which letter is which preset must not be guessable either
        params = [self.params_for(name) for name in presets]
        return CompareRequest(prompt, ",".join(presets), params[0], self.mode, presets=presets,
                              blind=self.compare_blind, column_params=params)

    # ----- running one --------------------------------------------------------------------
    def start_compare(self, request: CompareRequest) -> None:
        presets, params = request.presets, request.column_params
        view = CompareView(request.prompt, presets, request.blind)
        self.query_one(Transcript).mount(view)
        prior = self.session.transcript() if request.mode == "continue" else ""
        view.context = prior + request.prompt
        self.begin_generation(request, view)
        self._generate_compare(view.context, params, self.session.cancel, self.session.generation_finished)

    @work(thread=True, exit_on_error=False, group="generation", description="comparing")
    def _generate_compare(self, context: str, params: list, cancel: threading.Event,
                          finished: threading.Event) -> None:
        try:
            batch = self.session.active_generation = self.engine.generate_batch([context] * len(params), params, cancel)
            for event in batch:
                if event.piece:
                    self.pieces.put((event.row, event.piece))
                if event.stats is not None:
                    self.post_message(CompareRowDone(event.row, event.stats))
            finished.set()
            self.post_message(CompareDone())
        except TfchatError as exc:
            finished.set()
            self.post_message(CompareDone(str(exc)))
        except Exception as exc:
            finished.set()
            self.post_message(CompareDone(f"generation failed: {describe_exception(exc)}"))

    # Handlers by name: `@on` is not seen in a plain mixin (Textual collects it per widget class).
    def on_compare_row_done(self, message: CompareRowDone) -> None:
        self._drain()
        view = self.session.active_view
        if isinstance(view, CompareView):
            stats = message.stats
            view.columns[message.row].finish(stats_line(stats), "stopped" if stats.finish_reason == "stopped" else "",
                                             stats.as_dict(), stats.finish_reason)

    def on_compare_done(self, message: CompareDone) -> None:
        self._drain()
        request, view = self.session.end()
        self.query_one(StatusLine).state = "ready"
        if request is None or not isinstance(view, CompareView):
            return
        if message.error:
            for column in view.columns:
                if not column.finish_reason:
                    column.finish(message.error, "failed", reason="failed")
        else:
            self.record_compare(request, self.session.active_generation, "stopped")
            view.all_done(KEEP_KEY)
        self._start_next()

    def record_compare(self, request: CompareRequest, batch, reason: str) -> None:
        """Every column to the history with its preset, once, from whichever thread ends the compare."""
        if batch is None or not self.session.claim_record(request):
            return
        presets, params = request.presets, request.column_params
        for i, name in enumerate(presets):
            stats = batch.stats[i]
            self._write_exchange(request, batch.texts[i], name, params[i].as_dict(),
                                 stats.as_dict() if stats else {"new_tokens": None},
                                 stats.finish_reason if stats else reason)
        self._show_history_problems()

    # ----- keeping a column ---------------------------------------------------------------
    def action_keep_column(self) -> None:
        """Keep the next column of the latest compare: it becomes an exchange the session continues from."""
        views = [v for v in self.query_one(Transcript).children if isinstance(v, CompareView)]
        view = views[-1] if views else None
        if view is None or view is self.session.active_view:
            self.notify("No finished comparison to keep a column of." if view is None else
                        "The comparison is still running; esc stops it.", severity="warning")
            return
        column = view.keep(0 if view.kept is None else (view.kept + 1) % len(view.columns))
        if view.kept_exchange is not None:  # keeping another column replaces the one kept before
            view.kept_exchange.remove()
            self.session.context_log.remove(view.kept_entry)
        exchange = self.query_one(Transcript).add_exchange(view.prompt, column.preset)
        exchange.base_context = view.context
        exchange.branch.begin_generation()
        exchange.mark_generation_start(self.params_for(column.preset).as_dict())
        exchange.append(column.output)
        exchange.finish(f"kept from the comparison · {column.preset} · "
                        + (stats_line(GenerationStats(**column.stats)) if column.stats else column.finish_reason),
                        stats=column.stats, reason=column.finish_reason)
        view.kept_exchange, view.kept_entry = exchange, (view.prompt, column.output)
        self.session.context_log.append(view.kept_entry)
        self._update_context_meter()
        self.query_one(Transcript).scroll_end(animate=False)
        self.notify(f"Kept {column.label}: ctrl+g continues it.")


@slash_command("/compare")
def compare_command(app, *words: str) -> None:
    """`/compare [--blind] [PRESET ...]` (default: every preset), `/compare off`."""
    if list(words) == ["off"]:
        app.set_compare(None)
        return
    blind = "--blind" in words
    names = [w for w in words if w != "--blind"] or app.catalog.names()[:MAX_ROWS]
    for name in names:
        app.catalog.get(name)  # an unknown name: its message lists the known ones
    if len(names) > MAX_ROWS:
        raise TfchatError(f"compare takes at most {MAX_ROWS} presets, not {len(names)}")
    app.set_compare(names, blind)
