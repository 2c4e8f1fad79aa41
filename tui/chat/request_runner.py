"""Running the chat's requests: each starts in the view it streams into, and when it ends, its view is finished,
its exchange recorded in the history once, and the continue context kept."""
from __future__ import annotations

from tfchat.core.errors import TfchatError
from tfchat.tui.chat.bindings import KEEP_KEY
from tfchat.tui.state.requests import CompareRequest, ContinueRequest, Request, ScoreRequest
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.transcript.exchange_view import ExchangeView
from tfchat.tui.transcript.score_view import ScoreView
from tfchat.tui.transcript.stats_line import batch_tokens_per_s
from tfchat.tui.widgets.status_line import StatusLine

# Exchanges that keep their per-token records (about 1.5 KB a token); older ones keep their text.
TRACED_EXCHANGES = 100


def start_request(chat, request: Request) -> None:
    """Start `request` in the view it streams into: a new exchange, a comparison, a scored text, or
    the exchange a continuation or a branch goes on."""
    prior = chat.session.transcript() if request.mode == "continue" else ""
    try:
        view, context, forced = chat.transcript.view_for(request, prior, chat.session.continue_context(chat.mode),
                                                         chat.meter.encoding)
    except TfchatError as exc:
        chat.transcript.add_notice(str(exc), error=True)
        return
    chat.session.begin(request, view.number, lambda: view.generation)
    if isinstance(request, ContinueRequest):
        request.continues = view.prompt  # the history finds a continuation by its exchange's prompt
    chat.query_one(StatusLine).state = "generating"
    cancel, finished = chat.session.cancel, chat.session.generation_finished
    if isinstance(view, CompareView):
        engine = chat.shelf.engine_for(request.model_slots) if request.models else chat.engine
        view.generate(engine, request.column_params, cancel, finished)
        return
    if isinstance(view, ScoreView):
        view.score(chat.engine, request.off, cancel, finished)
        return
    chat.inside.show_probabilities_in(view)
    note = chat.meter.cropped_note(chat.meter.count(context), chat.engine.config.context_length)
    if note:
        view.note(note)
    view.mark_generation_start(request.params.as_dict(), request.kind, request.preset)
    view.generate(chat.engine, context, request.params, cancel, finished, forced)


def generation_done(chat, message: ExchangeView.Done) -> None:
    """An exchange's generation ended: its stats, the history, the continue context."""
    request, number = chat.session.end()
    chat.query_one(StatusLine).state = "ready"
    view = chat.transcript.view_numbered(number)
    if request is None or number != message.number or view is None:
        return
    view.branch.steps.extend(message.steps)
    chat.transcript.forget_old_steps(keep=TRACED_EXCHANGES)
    if message.error:
        view.finish(message.error, "failed", reason="failed")
    else:
        stats = message.stats
        chat.inside.last_tokens_per_s = stats.tokens_per_s
        view.finish_with(stats, request.preset)
        chat.session.remember(request, view.output)
        record(chat, request, view.new_output(), stats.as_dict(), stats.finish_reason)
        chat.show_history_problems()
    chat.update_context_meter()  # continue mode: the transcript grew


def compare_done(chat, message: CompareView.Done) -> None:
    """Every column of a comparison ended: the history gets each."""
    request, number = chat.session.end()
    chat.query_one(StatusLine).state = "ready"
    view = chat.transcript.view_numbered(number)
    if isinstance(request, CompareRequest) and number == message.number and view is not None and not message.error:
        chat.session.record_once(
            request, lambda: chat.keeper.record_compare(request, view.generation, "stopped", chat.model_source))
        chat.inside.last_tokens_per_s = batch_tokens_per_s(view.generation.stats)
        chat.show_history_problems()
        view.all_done(KEEP_KEY)


def score_done(chat, message: ScoreView.Done) -> None:
    request, number = chat.session.end()
    chat.query_one(StatusLine).state = "ready"
    view = chat.transcript.view_numbered(number)
    if isinstance(request, ScoreRequest) and number == message.number and view is not None:
        view.show_scored(message, request.off, stopped=chat.session.cancel.is_set())


def record(chat, request: Request, output: str, stats: dict, reason: str) -> None:
    """Write the exchange to the history, once, whichever thread ends it (see keep_interrupted)."""
    chat.session.record_once(
        request, lambda: chat.keeper.record_exchange(request, output, stats, reason, chat.model_source))
