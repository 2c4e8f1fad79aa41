"""The stats line under an exchange or a compare column: its parts (`GenerationStats.figures` and more)
joined by ' · ', each part kept whole when the line wraps (no 'tok/s' left alone on the next line)."""
from __future__ import annotations

from tfchat.core.engine.stats import GenerationStats

SEPARATOR = " · "


def joined(*parts: str) -> str:
    # No-break spaces inside a part: the line can only wrap between parts.
    return SEPARATOR.join(part.replace(" ", "\u00a0") for part in parts if part)


def stats_line(stats: GenerationStats, *more: str) -> str:
    """The figures, then `more` (the preset), then how it ended."""
    return joined(*stats.figures(), *more, stats.finish_reason)


def batch_tokens_per_s(rows: list[GenerationStats | None]) -> float | None:
    """A comparison's speed: every column's tokens over the time the batch took."""
    ended = [row for row in rows if row is not None]
    elapsed = max((row.elapsed_s for row in ended), default=0.0)
    return sum(row.new_tokens for row in ended) / elapsed if elapsed > 0 else None
