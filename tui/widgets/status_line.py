"""One line of facts: state, preset, the context against the window, mode, model, device, size.

Fields go in priority order: when the terminal is too narrow for all of them,
the least important are left out whole, never cut in the middle.
"""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {"loading": "yellow", "retrying": "yellow", "ready": "green", "generating": "cyan", "no model": "red", "failed": "red"}
SEPARATOR = " │ "


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
    preset: reactive[str] = reactive("")
    preset_changed: reactive[bool] = reactive(False)  # has /set changes
    compare: reactive[str] = reactive("")  # the presets compare mode sends each prompt to; "" when off
    context_tokens: reactive[int] = reactive(-1)  # tokens the next prompt would give the model; -1 unknown
    window: reactive[str] = reactive("book")  # the active preset's window policy: said when it is not the book's
    weights: reactive[str] = reactive("")  # "int8 weights, not exact" (`--weights int8`); "" for exact weights

    def fields(self) -> list[Text]:
        """Every field, most important first."""
        state = Text(f"● {self.state}", style=STATE_STYLES.get(self.state, ""))
        if self.queued:
            state.append(f" (+{self.queued} queued)")
        found = [state]
        if self.compare:
            found.append(Text(f"compare: {self.compare}", style="bold magenta"))
        elif self.preset:
            found.append(Text(self.preset + (" *" if self.preset_changed else ""),
                              style="bold yellow" if self.preset_changed else "bold"))
        if self.context_length and self.context_tokens >= 0:
            over = self.context_tokens > self.context_length
            found.append(Text(f"ctx {self.context_tokens}/{self.context_length}" + (" cropped" if over else ""),
                              style="bold red" if over else ""))
        if self.window != "book":
            found.append(Text(f"window: {self.window}", style="bold magenta"))
        found.append(Text(f"mode: {self.mode}"))
        found.append(Text(self.model_name or "no model"))
        if self.weights:  # a model that is not the checkpoint's numbers says so right beside its name
            found.append(Text(self.weights, style="bold red"))
        if self.device:
            found.append(Text(self.device))
        if self.parameters:
            found.append(Text(f"{self.parameters / 1e6:.1f}M params"))
        return found

    def render(self) -> Text:
        width = self.content_region.width or 10_000
        text = Text()
        for field in self.fields():
            addition = (SEPARATOR if text else "") + field.plain
            if text and len(text.plain) + len(addition) > width:
                break  # this field and every less important one are left out whole
            if text:
                text.append(SEPARATOR)
            text.append_text(field)
        return text
