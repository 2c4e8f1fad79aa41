"""What a finished generation reports about itself."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class GenerationStats:
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    tokens_per_s: float
    """Decode rate: tokens after the first over the time after the first."""
    elapsed_s: float
    device: str
    finish_reason: str
    """'length', 'stop' (a stop string), 'end_of_text' (a GPT-2's <|endoftext|>) or 'stopped' (cancelled,
    or the caller stopped iterating)."""
    seed: int
    window: str = "book"
    """The window policy past the context window: 'book', 'shift', or 'server' (a server's own, unknown here)."""

    def as_dict(self) -> dict:
        return asdict(self)


def measured_stats(prompt_tokens: int, new_tokens: int, start: float, first_at: float | None, end: float,
                   device: str, finish_reason: str, seed: int, window: str = "book") -> GenerationStats:
    """Stats from the clock readings of one generation: started, first token, ended."""
    n = new_tokens
    if n > 1 and end > first_at:
        rate = (n - 1) / (end - first_at)
    else:
        rate = n / (end - start) if end > start else 0.0
    return GenerationStats(prompt_tokens=prompt_tokens, new_tokens=n,
                           ttft_s=(first_at - start) if first_at is not None else 0.0, tokens_per_s=rate,
                           elapsed_s=end - start, device=device, finish_reason=finish_reason, seed=seed,
                           window=window)
