"""One generation's text and stats as its tokens come: the one text layer every backend and the
server stream through.

Tokens are decoded without splitting a character (`IncrementalDecoder`), text that may be the
start of a stop string is held back until it is known not to be (`StopFilter`), and the clock is
read for the stats. Torch-free: the UI's process uses it too (the HTTP backend).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from tfchat.core.decode.step_info import StepInfo
from tfchat.core.engine.stats import GenerationStats, measured_stats
from tfchat.core.engine.tokenizer import IncrementalDecoder
from tfchat.core.settings.sampling_params import SamplingParams


def drawn_seed(params: SamplingParams, bits: int = 62) -> int:
    """The request's seed, or a fresh one of `bits` bits (servers take 32-bit seeds)."""
    return params.seed if params.seed is not None else secrets.randbits(bits)


@dataclass
class RowEvent:
    """One row's news in a batched generation (the engine's compare, the server's scheduler): new
    text, and once the row has ended its stats, or the error that ended it."""

    row: int
    piece: str  # maybe empty when the event only ends the row
    stats: GenerationStats | None = None
    token_ids: list[int] = field(default_factory=list)  # the tokens behind `piece` (the scheduler's)
    steps: list[StepInfo] = field(default_factory=list)  # when top_logprobs were asked for
    error: str | None = None


class StopFilter:
    """Feed text pieces; get back what is safe to show and whether a stop string ended it."""

    def __init__(self, stops: tuple[str, ...]):
        self._stops = stops
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            shown, self._pending = self._pending[: min(hits)], ""
            return shown, True
        hold = self._longest_stop_prefix_suffix()
        cut = len(self._pending) - hold
        shown, self._pending = self._pending[:cut], self._pending[cut:]
        return shown, False

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest

    def _longest_stop_prefix_suffix(self) -> int:
        """Length of the longest end of the pending text that begins some stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(stop[:size]):
                    best = size
                    break
        return best


class TextStream:
    """Take each new token (or, from a server, text it decoded); read `text`; `end` gives the tail and the stats.

    `take` is the one rule for a new token, the same for a single generation, a batch's rows and the
    server's: `finish` turns to the reason when the token ends the text, and the caller stops asking
    for tokens. `seed` is the one the generation draws with.
    """

    def __init__(self, encoding, prompt_tokens: int, params: SamplingParams, device: str,
                 seed: int | None = None, start: float | None = None, window: str | None = None,
                 end_of_text_id: int | None = None, weights: str = "exact"):
        self._decoder = IncrementalDecoder(encoding)
        self._weights = weights  # the model's (`core.nn.int8_weights`): reported with the stats
        self._window = window or params.window  # the policy the stats report
        self._stops = StopFilter(params.stop)
        # A GPT-2's <|endoftext|> ends the text (not shown) unless the preset says to go on past it.
        self._end_of_text_id = end_of_text_id if params.end_of_text == "stop" else None
        self._prompt_tokens = prompt_tokens
        self._device = device
        self.seed = drawn_seed(params) if seed is None else seed
        self._start = time.perf_counter() if start is None else start
        self._first_at: float | None = None
        self.text = ""
        self.new_tokens = 0
        self.stopped = False  # a stop string was met: nothing after it is shown
        self.finish: str | None = None  # why the text ended, once a token ended it: "end_of_text" or "stop"

    def forced(self, token_ids) -> str:
        """A branch's chosen tokens, which follow the prompt as if the model had drawn them: their
        text comes first, but they are prompt, not new tokens."""
        piece = "".join(self._decoder.push(token) for token in token_ids)
        self._prompt_tokens += len(token_ids)
        self.text += piece
        return piece

    def take(self, token: int, now: float | None = None) -> str:
        """A new token: the text now safe to show (maybe empty). Sets `finish` when it ends the text: the
        model's end of text under a preset that stops there, or a stop string (held back text up to it shown)."""
        self._first_at = self._first_at or (time.perf_counter() if now is None else now)
        self.new_tokens += 1
        if self.finish is not None:
            return ""
        if token == self._end_of_text_id:
            self.finish = "end_of_text"
            return ""
        piece, self.stopped = self._stops.feed(self._decoder.push(token))
        if self.stopped:
            self.finish = "stop"
        self.text += piece
        return piece

    def push_text(self, piece: str) -> str:
        """Text a server decoded and cut at its stop strings already: only the clock is read."""
        if piece:
            self._first_at = self._first_at or time.perf_counter()
            self.text += piece
        return piece

    def end(self, reason: str | None, new_tokens: int | None = None,
            prompt_tokens: int | None = None) -> tuple[str, GenerationStats]:
        """What was held back (nothing after a stop string), and the stats; a server's own counts
        (`new_tokens`, `prompt_tokens`) replace the ones made here. A token that ended the text
        (`finish`) gives the reason; `reason` is why the decoding ended otherwise (its length, a cancel)."""
        reason = self.finish or reason
        tail = ""
        if not self.stopped:
            tail, self.stopped = self._stops.feed(self._decoder.flush())
            tail += "" if self.stopped else self._stops.flush()
            self.text += tail
        stats = measured_stats(self._prompt_tokens if prompt_tokens is None else prompt_tokens,
                               self.new_tokens if new_tokens is None else new_tokens, self._start, self._first_at,
                               time.perf_counter(), self._device, reason or "stopped", self.seed, self._window)
        stats.weights = self._weights
        return tail, stats
