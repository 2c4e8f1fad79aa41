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
