"""One line of engine facts: model, device, size, window, state, mode."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {"loading": "yellow", "ready": "green", "generating": "cyan", "no model": "red", "failed": "red"}


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    model_name: reactive[str] = reactive("")
    device: reactive[str] = reactive("")
    parameters: reactive[int] = reactive(0)
    context_length: reactive[int] = reactive(0)
    state: reactive[str] = reactive("loading")
    mode: reactive[str] = reactive("completion")
    queued: reactive[int] = reactive(0)

    def render(self) -> Text:
        text = Text()
        text.append(self.model_name or "no model")
        if self.device:
            text.append(f" │ {self.device}")
        if self.parameters:
            text.append(f" │ {self.parameters / 1e6:.1f}M params │ ctx {self.context_length}")
        text.append(" │ ")
        text.append(f"● {self.state}", style=STATE_STYLES.get(self.state, ""))
        if self.queued:
            text.append(f" (+{self.queued} queued)")
        text.append(f" │ mode: {self.mode}")
        return text
