"""What a finished generation reports about itself, and the one way it is put in words."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from tfchat.core.settings.weights_choice import weights_label


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
    drafting: dict | None = None
    """What drafting did (`core.decode.drafting.DraftStats.as_json`); None where nothing was drafted."""
    weights: str = "exact"
    """'exact' (the checkpoint's numbers), or 'int8' (`--weights int8`: not exact, and said so everywhere)."""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict) -> GenerationStats | None:
        """Stats as the history or a compare column keeps them (`as_dict`); None when a field is missing."""
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in stored.items() if k in names})
        except TypeError:
            return None

    def figures(self, in_all: int | None = None) -> list[str]:
        """The numbers people read, in order: the one way a generation's stats are put in words (the stats
        line under an exchange, the history's listing, a saved transcript). `in_all`: the text's tokens
        counted with a continuation's or a branch's earlier ones. The window policy unless it is the book's."""
        count = (f"{self.new_tokens} new tokens, {in_all} in all" if in_all is not None and in_all > self.new_tokens
                 else f"{self.new_tokens} tokens")
        parts = [count, f"{self.tokens_per_s:.1f} tok/s", f"ttft {self.ttft_s * 1000:.0f} ms"]
        if self.drafting and self.drafting.get("drafted"):
            parts.append(f"drafts {self.drafting['accepted']}/{self.drafting['drafted']} taken, "
                         f"{self.drafting['tokens_per_pass']:.2f} tok/pass")
        if self.weights != "exact":
            parts.append(weights_label(self.weights))
        return parts + [f"window {self.window}"] if self.window != "book" else parts

    def as_json(self) -> dict:
        """For scripts (`generate --stats`): every field, times rounded to what the clock can tell."""
        figures = {**self.as_dict(), "ttft_s": round(self.ttft_s, 5), "tokens_per_s": round(self.tokens_per_s, 2),
                   "elapsed_s": round(self.elapsed_s, 5)}
        if figures["drafting"] is None:  # nothing drafted (off, past the window, a server): nothing to say
            del figures["drafting"]
        if figures["weights"] == "exact":  # only a departure from the checkpoint is worth a field
            del figures["weights"]
        return figures


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
