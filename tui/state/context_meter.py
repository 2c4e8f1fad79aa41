"""How many tokens the model would be given: the status line's `ctx N/C` and the cropped-context note."""
from __future__ import annotations

from tfchat.core.errors import TfchatError
from tfchat.core.engine.tokenizer import model_tokenizer, use_model_tokenizer


class ContextMeter:
    """Counts with the model's tokenizer in the UI process (cl100k_base until the backend says otherwise);
    loading the ranks is left to a worker thread."""

    def __init__(self):
        self._encoding = None

    def load(self) -> None:
        try:
            self._encoding = model_tokenizer()
        except TfchatError:
            self._encoding = None  # no count shown; the engine reports the same problem itself

    def use(self, encoding) -> None:
        """The backend's tokenizer, for this count and every view of tokens in this process."""
        use_model_tokenizer(encoding)
        self._encoding = encoding

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
