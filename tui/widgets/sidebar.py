"""The preset sidebar: every preset by number, the active one marked, its parameters below."""
from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tfchat.core.settings.presets import PresetCatalog
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.settings.shown_values import shown_value


# Narrower than this, the sidebar would squeeze the transcript and the prompt: hidden unless asked for.
SIDEBAR_MIN_WIDTH = 72


class PresetSidebar(Vertical):
    DEFAULT_CSS = """
    PresetSidebar { width: 32; border-left: solid $accent 40%; padding: 0 1; }
    PresetSidebar > Label { text-style: bold; margin: 0 0 1 0; }
    PresetSidebar OptionList { height: auto; max-height: 12; border: none; padding: 0; }
    PresetSidebar #preset-params { margin: 1 0 0 0; color: $text-muted; }
    PresetSidebar #models { margin: 1 0 0 0; }
    """

    @dataclass
    class Chosen(Message):
        name: str

    def __init__(self):
        super().__init__()
        self.choice: bool | None = None  # ctrl+s's; None: shown when the terminal is wide enough
        self._width = SIDEBAR_MIN_WIDTH

    def fit(self, width: int) -> None:
        """Shown where it leaves the transcript room, unless ctrl+s chose otherwise."""
        self._width = width
        self.display = width >= SIDEBAR_MIN_WIDTH if self.choice is None else self.choice

    def toggle(self) -> None:
        """ctrl+s: shown or hidden from now on, at any size."""
        self.choice = not self.display
        self.fit(self._width)

    def compose(self):
        yield Label("Presets")
        yield OptionList(id="preset-list")
        yield Static(id="preset-params")
        models = Static(id="models")
        models.display = False
        yield models

    def show_models(self, lines: list[str]) -> None:
        """The models resident (more than one), the active one marked; none: the list hidden."""
        models = self.query_one("#models", Static)
        models.display = bool(lines)
        models.update(Text("Models (f10)\n", style="bold") + Text("\n".join(lines)))

    def show(self, catalog: PresetCatalog, active: str, params: SamplingParams, overridden: set[str]) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        for number, name in enumerate(catalog.names(), start=1):
            marker = "●" if name == active else " "
            source = " (user)" if catalog.presets[name].source == "user" else ""
            options.add_option(Option(f"{marker} {number} {name}{source}", id=name))
        options.highlighted = catalog.names().index(active)
        self.query_one("#preset-params", Static).update(self._params_text(catalog, active, params, overridden))

    @staticmethod
    def _params_text(catalog, active, params: SamplingParams, overridden: set[str]) -> Group:
        parts = []
        description = catalog.presets[active].description
        if description:
            parts.append(Text(description + "\n", style="italic"))
        grid = Table.grid(padding=(0, 1))  # a long value wraps in its own column
        grid.add_column(no_wrap=True)
        grid.add_column()
        for key, value in params.as_dict().items():
            if (key == "stop" and not value) or (key, value) in (("end_of_text", "stop"), ("draft", "auto")):
                continue  # the defaults that say nothing: no stop strings; a GPT-2's end of text ends it; drafting
            changed = key in overridden
            grid.add_row(Text(key, style="bold yellow" if changed else ""),
                         Text(shown_value(key, value) + (" *" if changed else ""), style="bold yellow" if changed else ""))
        parts.append(grid)
        if overridden:
            parts.append(Text("* changed with /set", style="yellow"))
        return Group(*parts)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(event.option.id))
