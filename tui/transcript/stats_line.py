"""The stats line under an exchange or a compare column: its parts joined by ' · ', each part
kept whole when the line wraps (no 'tok/s' left alone on the next line)."""
from __future__ import annotations

from tfchat.core.engine.stats import GenerationStats

SEPARATOR = " · "


def joined(*parts: str) -> str:
    # No-break spaces inside a part: the line can only wrap between parts.
    return SEPARATOR.join(part.replace(" ", "\u00a0") for part in parts if part)


def token_count(new_tokens: int, in_all: int | None = None) -> str:
    """'40 tokens', or after a continuation or on a branch '40 new tokens, 80 in all'."""
    if in_all is not None and in_all > new_tokens:
        return f"{new_tokens} new tokens, {in_all} in all"
    return f"{new_tokens} tokens"


def stats_parts(stats: GenerationStats, in_all: int | None = None) -> list[str]:
    """The numbers of a stats line; the window policy too, unless it is the book's."""
    parts = [token_count(stats.new_tokens, in_all), f"{stats.tokens_per_s:.1f} tok/s",
             f"ttft {stats.ttft_s * 1000:.0f} ms"]
    return parts + [f"window {stats.window}"] if stats.window != "book" else parts


def batch_tokens_per_s(rows: list[GenerationStats | None]) -> float | None:
    """A comparison's speed: every column's tokens over the time the batch took."""
    ended = [row for row in rows if row is not None]
    elapsed = max((row.elapsed_s for row in ended), default=0.0)
    return sum(row.new_tokens for row in ended) / elapsed if elapsed > 0 else None
