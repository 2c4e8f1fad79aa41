"""Compare mode's choice: whether it is on, for which presets (or every loaded model), and whether blind.

f6 (or `/compare`) turns it on; every prompt sent while it is on becomes a `CompareRequest`, decoded
in one batch and shown side by side (`tui.transcript.compare_view`). Plain state.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.settings.presets import PresetCatalog
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.state.requests import CompareRequest


class CompareChoice:
    """Whether compare mode is on, for which presets, and whether blind."""

    def __init__(self):
        self.presets: list[str] | None = None  # None: compare mode is off
        self.blind = False
        self.shelf = None  # comparing models (`tui.state.model_shelf`): every loaded one, under presets[0]

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
            return f"{len(self.shelf.comparable_indices())} models · {self.presets[0]}"
        return f"{len(self.presets)} presets, blind" if self.blind else ", ".join(self.presets)

    def announcement(self) -> str:
        if self.presets:
            return f"Compare mode: each prompt goes to {self.shown()}. f6 turns it off."
        return "Compare mode off: prompts go to the active preset."

    def request(self, prompt: str, mode: str, params_for: Callable[[str], SamplingParams]) -> CompareRequest:
        if self.shelf is not None:  # the same preset on every model: a column each
            indices = self.shelf.comparable_indices()  # one still loading: the request waits for it
            params = params_for(self.presets[0])
            return CompareRequest(prompt, self.presets[0], params, mode, presets=[self.presets[0]] * len(indices),
                                  column_params=[params] * len(indices),
                                  models=[self.shelf.slots[i].name for i in indices], model_slots=indices)
        presets = list(self.presets)
        if self.blind:
            random.shuffle(presets)  # blind: which letter is which preset must not be guessable either
        params = [params_for(name) for name in presets]
        return CompareRequest(prompt, ",".join(presets), params[0], mode, presets=presets,
                              blind=self.blind, column_params=params)
