"""How many tokens the model would be given: the status line's `ctx N/C` and the cropped-context note."""
from __future__ import annotations

import threading

from tfchat.core.engine.tokenizer import load_encoding
from tfchat.core.errors import TfchatError


class ContextMeter:
    """Counts with the model's tokenizer in the UI process: cl100k_base until the backend gives its own
    (a GPT-2 folder's). It is also the tokenizer the chat's views of tokens are given. Loading the ranks
    is left to a worker thread (`load`)."""

    def __init__(self):
        self._encoding = None
        self._given = False  # the backend's own: a late load of cl100k_base must not replace it
        self._lock = threading.Lock()

    def load(self) -> None:
        try:
            loaded = load_encoding()
        except TfchatError:
            return  # no count shown; the engine reports the same problem itself
        with self._lock:
            if not self._given:
                self._encoding = loaded

    def use(self, encoding) -> None:
        """The active backend's tokenizer, from now on."""
        with self._lock:
            self._encoding, self._given = encoding, True

    @property
    def encoding(self):
        """The tokenizer counts and token views use (cl100k_base when nothing has loaded yet)."""
        return self._encoding if self._encoding is not None else load_encoding()

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
