"""Holding back text that might be the start of a stop string."""
from __future__ import annotations


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


class RowText:
    """One generation's text as its tokens come: decoded without splitting a character, with
    the text that might begin a stop string held back until it is known not to."""

    def __init__(self, decoder, stops: tuple[str, ...]):
        self._decoder = decoder  # core.engine.tokenizer.IncrementalDecoder
        self._stops = StopFilter(stops)
        self.text = ""

    def push(self, token: int) -> tuple[str, bool]:
        """The text now safe to show, and whether a stop string has ended the generation."""
        piece, stopped = self._stops.feed(self._decoder.push(token))
        self.text += piece
        return piece, stopped

    def finish(self, stopped: bool) -> str:
        """What was held back, at the end (nothing after a stop string)."""
        if stopped:
            return ""
        tail, stopped = self._stops.feed(self._decoder.flush())
        tail += "" if stopped else self._stops.flush()
        self.text += tail
        return tail
