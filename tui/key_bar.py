"""A footer that wraps onto a second line instead of cutting keys off at 80 columns."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

NBSP = "\u00a0"  # keeps each key and its label together when the line wraps


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom; height: auto; max-height: 3; padding: 0 1;
        background: $footer-background; color: $footer-description-foreground;
    }
    """

    def on_mount(self) -> None:
        self.update(self._render_keys())

    def _render_keys(self) -> Text:
        text = Text()
        bindings = [b for b in self.app.BINDINGS if b.show]
        for binding in bindings:
            key = binding.key_display or self.app.get_key_display(binding)
            text.append(key.replace(" ", NBSP), style="bold")
            text.append(NBSP + binding.description.replace(" ", NBSP) + "  ")
        text.append("f1", style="bold")
        text.append(NBSP + "palette")
        return text
