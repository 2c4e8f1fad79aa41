"""Compare mode: each prompt goes to several presets at once, decoded in one batch, shown side by side.

f6 (or `/compare`) turns it on; every prompt sent while it is on becomes a
`CompareView` (tui.transcript.compare_view: one column per preset, which streams itself).
Escape stops every column. f7 keeps a column: it becomes the exchange the
session continues from. Every column goes to the history with its preset.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.errors import TfchatError
from tfchat.core.settings.presets import PresetCatalog
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.transcript.compare_view import CompareView, stats_line
from tfchat.tui.state.requests import CompareRequest
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.widgets.status_line import StatusLine


class CompareChoice:
    """Whether compare mode is on, for which presets, and whether blind. Plain state."""

    def __init__(self):
        self.presets: list[str] | None = None  # None: compare mode is off
        self.blind = False
        self.shelf = None  # comparing models (`tui.chat.model_actions`): every loaded one, under presets[0]

    @staticmethod
    def every_preset(catalog: PresetCatalog) -> list[str]:
        return catalog.names()[:MAX_ROWS]

    def choose(self, presets: list[str] | None, blind: bool = False, shelf=None) -> str:
        """Turn compare mode on for `presets` (None: off), or for every model of `shelf` under presets[0];
        returns what the status line shows."""
        self.presets, self.blind, self.shelf = presets, blind, shelf
        return self.shown()

    def shown(self) -> str:
        # Blind: the names stay hidden until a column is kept.
        if not self.presets:
            return ""
        if self.shelf is not None:
            return f"{len(self.shelf.ready())} models · {self.presets[0]}"
        return f"{len(self.presets)} presets, blind" if self.blind else ", ".join(self.presets)

    def announcement(self) -> str:
        if self.presets:
            return f"Compare mode: each prompt goes to {self.shown()}. f6 turns it off."
        return "Compare mode off: prompts go to the active preset."

    def request(self, prompt: str, mode: str, params_for: Callable[[str], SamplingParams]) -> CompareRequest:
        if self.shelf is not None:  # the same preset on every model: a column each
            slots = self.shelf.ready()
            params = params_for(self.presets[0])
            return CompareRequest(prompt, self.presets[0], params, mode, presets=[self.presets[0]] * len(slots),
                                  column_params=[params] * len(slots), models=[slot.name for slot in slots],
                                  engine=self.shelf.engine())
        presets = list(self.presets)
        if self.blind:
            random.shuffle(presets)  # blind: which letter is which preset must not be guessable either
        params = [params_for(name) for name in presets]
        return CompareRequest(prompt, ",".join(presets), params[0], mode, presets=presets,
                              blind=self.blind, column_params=params)


def keep_column(chat) -> None:
    """Keep the next column of the chat's latest compare: it becomes an exchange the session continues from."""
    transcript = chat.transcript
    views = [v for v in transcript.children if isinstance(v, CompareView)]
    view = views[-1] if views else None
    if view is None or view is chat.session.active_view:
        chat.notify("No finished comparison to keep a column of." if view is None else
                    "The comparison is still running; esc stops it.", severity="warning")
        return
    column = view.keep(0 if view.kept is None else (view.kept + 1) % len(view.columns))
    if view.models:  # a comparison of models: the session goes on with the kept column's model
        chat.app.shelf.switch(chat, chat.app.shelf.find(view.models[view.kept]))
    if view.kept_exchange is not None:  # keeping another column replaces the one kept before
        view.kept_exchange.remove()
        chat.session.context_log.remove(view.kept_entry)
    exchange = transcript.add_exchange(view.prompt, column.preset)
    exchange.kept_from_comparison = True  # ctrl+g continues it under its own preset
    exchange.base_context = view.context
    exchange.branch.begin_generation()
    exchange.mark_generation_start(chat.presets.params_for(column.preset).as_dict())
    exchange.append(column.output)
    exchange.finish(f"kept from the comparison · {column.preset} · "
                    + (stats_line(GenerationStats(**column.stats)) if column.stats else column.finish_reason),
                    stats=column.stats, reason=column.finish_reason)
    view.kept_exchange, view.kept_entry = exchange, (view.prompt, column.output)
    chat.session.context_log.append(view.kept_entry)
    chat.update_context_meter()
    transcript.scroll_end(animate=False)
    chat.notify(f"Kept {column.label}: ctrl+g continues it.")


@slash_command("/compare")
def compare_command(chat, *words: str) -> None:
    """`/compare [--blind] [PRESET ...]` (default: every preset), `/compare off`."""
    if list(words) == ["off"]:
        chat.set_compare(None)
        return
    if words and words[0] == "--models":
        compare_models(chat, words[1] if len(words) > 1 else chat.presets.name)
        return
    blind = "--blind" in words
    names = [w for w in words if w != "--blind"] or CompareChoice.every_preset(chat.presets.catalog)
    for name in names:
        chat.presets.catalog.get(name)  # an unknown name: its message lists the known ones
    if len(names) > MAX_ROWS:
        raise TfchatError(f"compare takes at most {MAX_ROWS} presets, not {len(names)}")
    chat.set_compare(names, blind)


def compare_models(chat, preset: str) -> None:
    """`/compare --models [PRESET]`: each prompt to every loaded model under one preset, a column each."""
    chat.presets.catalog.get(preset)
    shelf = chat.app.shelf
    if len(shelf.ready()) < 2:
        raise TfchatError("comparing models needs two loaded: give more with --model, or /model add PATH")
    chat.query_one(StatusLine).compare = chat.compare.choose([preset], shelf=shelf)
    chat.notify(f"Compare mode: each prompt goes to {', '.join(s.name for s in shelf.ready())} under {preset}. "
                "f6 turns it off.")
