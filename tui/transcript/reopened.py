"""A past conversation back in the transcript: its exchanges as they were shown, each finished with its stats."""
from __future__ import annotations

from tfchat.core.engine.stats import GenerationStats
from tfchat.tui.state.branches import Branch
from tfchat.tui.state.conversation import GENERATED_KINDS
from tfchat.tui.transcript.exchange_view import ExchangeView
from tfchat.tui.transcript.stats_line import joined


def show_conversation(transcript, exchanges) -> None:
    """Mount a view for each exchange: a continue goes on in the exchange before it, a comparison is one note."""
    last: ExchangeView | None = None
    index = 0
    while index < len(exchanges):
        exchange = exchanges[index]
        if exchange.kind == "compare":
            columns = [exchange]
            while index + 1 < len(exchanges) and exchanges[index + 1].kind == "compare" \
                    and exchanges[index + 1].prompt == exchange.prompt:
                index += 1
                columns.append(exchanges[index])
            transcript.add_notice(f"A comparison of {', '.join(c.preset for c in columns)} on "
                                  f"{' '.join(exchange.prompt.split())[:60]!r} (f2 shows each column)")
        elif exchange.kind in GENERATED_KINDS:
            goes_on = last is not None and (exchange.kind == "continue"
                                            or exchange.kind == "branch" and exchange.prompt == last.prompt)
            if not goes_on:
                last = transcript.add_exchange(exchange.prompt, exchange.preset)
                last.base_context = exchange.prompt
            elif exchange.kind == "branch":  # its whole text, from the exchange's prompt on
                last.add_branch(Branch())
            restore_run(last, exchange)
        index += 1


def restore_run(view: ExchangeView, exchange) -> None:
    """One generation of the history in `view`: its text, then its stats line as it was."""
    view.branch.begin_generation()
    view.mark_generation_start(exchange.params, exchange.kind, exchange.preset)
    view.append(exchange.output)
    try:
        stats = GenerationStats.from_dict(exchange.stats or {})
        if stats is not None:
            view.finish_with(stats, exchange.preset)
            return
    except (TypeError, ValueError):  # a damaged row's figures: its text still shows
        pass
    view.finish(joined(exchange.preset, exchange.finish_reason), "stopped" if exchange.finish_reason == "stopped"
                else "", stats=exchange.stats, reason=exchange.finish_reason)
