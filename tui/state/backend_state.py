"""Where the chat's backend is: loading, waiting for a server, ready, failed, or no model at all. Plain state:
the chat shows it (`tui.chat.backend_view`) and asks it, never its status line, whether prompts can run."""
from __future__ import annotations


class BackendState:
    def __init__(self):
        self.state = "loading"  # loading, retrying, ready, failed, no model
        self.retries = 0  # tries that found no server, for the line that says it answered

    def retrying(self, tries: int) -> None:
        self.state, self.retries = "retrying", tries

    def ready(self) -> None:
        self.state = "ready"

    def failed(self, missing_model: bool) -> None:
        self.state = "no model" if missing_model else "failed"

    @property
    def unavailable(self) -> bool:
        """No backend will come: prompts sent now cannot run (while loading or retrying they wait)."""
        return self.state in ("no model", "failed")
