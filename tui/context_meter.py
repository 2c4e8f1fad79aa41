"""How many tokens the model would be given: the status line's `ctx N/C` and the cropped-context note."""
from __future__ import annotations

from core.errors import TfchatError
from core.engine.tokenizer import load_encoding


class ContextMeter:
    """Counts with cl100k_base in the UI process; loading the ranks is left to a worker thread."""

    def __init__(self):
        self._encoding = None

    def load(self) -> None:
        try:
            self._encoding = load_encoding()
        except TfchatError:
            self._encoding = None  # no count shown; the engine reports the same problem itself

    def count(self, text: str) -> int | None:
        if self._encoding is None:
            return None
        return len(self._encoding.encode(text, disallowed_special=()))

    @staticmethod
    def cropped_note(tokens: int | None, window: int) -> str | None:
        """The line an exchange shows when the book's cropping will drop part of its context."""
        if tokens is None or tokens <= window:
            return None
        return (f"The context is {tokens} tokens; the model sees only the last {window}, "
                f"so the first {tokens - window} are dropped (as the book crops).")
