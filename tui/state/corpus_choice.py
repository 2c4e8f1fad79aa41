"""The training text the app holds outputs against (the overlap view, the token cursor's corpus line):
given with --corpus or /corpus, or as the model's checkpoint records it. Plain state."""
from __future__ import annotations


class CorpusChoice:
    def __init__(self, asked: str | None = None):
        self.asked = asked  # --corpus FILE, or the last /corpus PATH
        self.training_text = None  # a core.corpus TrainingText once indexed
        self.problem: str | None = None  # why there is none (one line to show when it is asked for)
        self.loading: str | None = None  # the file being indexed now
        self.started = False  # the first model ready starts it, once

    def ready(self) -> bool:
        return self.training_text is not None

    def unavailable(self) -> str:
        """What to say when the view is asked for without a corpus."""
        if self.loading:
            return f"The training text {self.loading} is still being indexed; a moment."
        return self.problem or "No training text yet: /corpus PATH gives the text the model was trained on."
