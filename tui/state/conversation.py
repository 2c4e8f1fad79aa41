"""A past conversation from the history, as the session holds one: the text continue mode goes on from.

The rules are the session's own (GenerationSession.remember): a continue lengthens the last exchange's
text, a branch replaces it; a comparison's columns were never the context (the kept one is not recorded
as kept), so they stay out.
"""
from __future__ import annotations

# The kinds of exchange a reopened conversation shows as exchanges (a comparison is a note).
GENERATED_KINDS = ("prompt", "regenerate", "continue", "branch")


def context_log_of(exchanges) -> list[tuple[str, str]]:
    """(prompt, output) of each exchange, in order, with continues and branches folded in as they were."""
    log: list[tuple[str, str]] = []
    for exchange in exchanges:
        if exchange.kind == "continue" and log:
            log[-1] = (log[-1][0], log[-1][1] + exchange.output)
        elif exchange.kind == "branch" and log:
            log[-1] = (log[-1][0], exchange.output)
        elif exchange.kind in GENERATED_KINDS:
            log.append((exchange.prompt, exchange.output))
    return log


def title_shown(title: str, width: int = 60) -> str:
    """A conversation's title (its first prompt) on one line of at most `width` characters."""
    first = " ".join(title.split())
    return first if len(first) <= width else first[: width - 1] + "…"
