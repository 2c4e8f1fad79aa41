"""Several models resident at once: the ones given with --model (repeated) or `/model add PATH`.

The first loads as the app starts and is active; the others load after it, each in its own engine
process, unless the machine has not the memory for one (one line, not loaded). f10 or `/model N`
makes another one active: the status line, the sidebar, the token counts and the history follow.
`/compare --models` sends each prompt to every loaded model under the active preset, a column each.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfchat.core.engine.model_set import ModelsEngine, available_memory_bytes, refusal_to_load
from tfchat.core.errors import TfchatError
@dataclass
class ModelSlot:
    path: Path
    backend: object | None = None
    state: str = "loading"  # loading, ready, failed
    error: str = ""
    claimed: bool = False  # a loader took it (loads run one after the other, on whichever worker is free)

    @property
    def name(self) -> str:
        return self.path.name

    def line(self, number: int, active: bool) -> str:
        """Its number and name, then (indented) its size: parameters and the memory its weights hold."""
        marker = "●" if active else " "
        if self.state != "ready":
            return f"{marker} {number} {self.name}\n    {self.state}"
        resident = (self.backend.describe() or {}).get("resident_bytes") or 0
        size = f" · {resident / 2**20:,.0f} MiB" if resident else ""
        return f"{marker} {number} {self.name}\n    {self.backend.parameter_count / 1e6:.1f}M params{size}"


class ModelShelf:
    def __init__(self, paths: list[Path]):
        self.slots = [ModelSlot(path) for path in paths]
        self.slots[0].claimed = True  # the app loads the first itself, as it starts
        self.active = 0
        self._claims = threading.Lock()

    def claim_next(self) -> ModelSlot | None:
        """The next model nobody is loading yet, now claimed (called on the UI thread's workers in turn)."""
        with self._claims:
            for slot in self.slots:
                if not slot.claimed:
                    slot.claimed = True
                    return slot
        return None

    def ready_indices(self) -> list[int]:
        return [i for i, slot in enumerate(self.slots) if slot.state == "ready"]

    def comparable_indices(self) -> list[int]:
        """The models a comparison takes: the loaded ones and those still loading (it waits for them)."""
        return [i for i, slot in enumerate(self.slots) if slot.state in ("ready", "loading")]

    def loading_names(self, indices: list[int]) -> list[str]:
        return [self.slots[i].name for i in indices if self.slots[i].state == "loading"]

    def ready(self) -> list[ModelSlot]:
        return [self.slots[i] for i in self.ready_indices()]

    def lines(self) -> list[str]:
        return [slot.line(i + 1, i == self.active) for i, slot in enumerate(self.slots)]

    def load(self, slot: ModelSlot, loader, device: str) -> None:
        """Load one more model (on a worker thread): refused in one line when memory would not hold it."""
        refusal = refusal_to_load(slot.path, available_memory_bytes())
        if refusal:
            slot.state, slot.error = "failed", refusal
            return
        try:
            slot.backend, slot.state = loader(slot.path, device), "ready"
        except TfchatError as exc:
            slot.state, slot.error = "failed", str(exc)

    def load_waiting(self, loader, device: str, loaded: Callable[[ModelSlot], None], ending: threading.Event) -> None:
        """Load every model not loaded yet, one after the other on a thread, calling `loaded` with each (ready
        or failed). Not a daemon: a model half-loaded when the app ends is ended with the app's children."""
        def run() -> None:
            while not ending.is_set() and (slot := self.claim_next()) is not None:
                self.load(slot, loader, device)
                loaded(slot)

        threading.Thread(target=run, name="tfchat-more-models").start()

    def close(self) -> None:
        for slot in self.slots:
            if slot.backend is not None:
                slot.backend.close()

    def find(self, word: str) -> int:
        """A slot's index from its number (from 1) or its name."""
        if word.isdigit() and 1 <= int(word) <= len(self.slots):
            return int(word) - 1
        names = [slot.name for slot in self.slots]
        if word in names:
            return names.index(word)
        raise TfchatError(f"no model {word!r}; loaded: {', '.join(f'{i} {n}' for i, n in enumerate(names, 1))}")

    def activate(self, index: int) -> ModelSlot:
        """Make slot `index` the one prompts go to; a model not ready is a TfchatError."""
        slot = self.slots[index]
        if slot.state != "ready":
            raise TfchatError(f"{slot.name} is {slot.state}" + (f": {slot.error}" if slot.error else ""))
        self.active = index
        return slot

    def next_ready(self) -> int | None:
        """The ready model after the active one (round again to the first); None when fewer than two are ready."""
        ready = self.ready_indices()
        if len(ready) < 2:
            return None
        later = [i for i in ready if i > self.active]
        return later[0] if later else ready[0]

    def engine_for(self, indices: list[int]) -> ModelsEngine:
        """The models at `indices`, in that order, for a comparison across them."""
        return ModelsEngine([self.slots[index].backend for index in indices])
