"""Several models resident at once: the ones given with --model (repeated) or `/model add PATH`.

The first loads as the app starts and is active; the others load after it, each in its own engine
process, unless the machine has not the memory for one (one line, not loaded). f10 or `/model N`
makes another one active: the status line, the sidebar, the token counts and the history follow.
`/compare --models` sends each prompt to every loaded model under the active preset, a column each.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from tfchat.core.engine.model_set import ModelsEngine, available_memory_bytes, refusal_to_load
from tfchat.core.errors import TfchatError
from tfchat.core.system.paths import user_path
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.widgets.status_line import StatusLine


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


@dataclass
class ModelLoaded(Message):
    """One more model of the shelf ended loading: ready, or failed with its line."""
    slot: ModelSlot


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

    def ready(self) -> list[ModelSlot]:
        return [slot for slot in self.slots if slot.state == "ready"]

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

    def load_waiting(self, loader, device: str, post, ending: threading.Event) -> None:
        """Load every model not loaded yet, one after the other on a thread, posting `ModelLoaded` for each.
        Not a daemon: a model half-loaded when the app ends is ended with the app's children."""
        def run() -> None:
            while not ending.is_set() and (slot := self.claim_next()) is not None:
                self.load(slot, loader, device)
                post(ModelLoaded(slot))

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

    def switch(self, chat, index: int) -> None:
        """Make slot `index` the one prompts go to."""
        slot = self.slots[index]
        if slot.state != "ready":
            raise TfchatError(f"{slot.name} is {slot.state}" + (f": {slot.error}" if slot.error else ""))
        self.active = index
        chat.engine = slot.backend
        chat.model_label, chat._model_source = slot.name, str(slot.path)
        status = chat.query_one(StatusLine)
        status.model_name, status.device = slot.name, str(slot.backend.device)
        status.parameters, status.context_length = slot.backend.parameter_count, slot.backend.config.context_length
        chat.meter.use(slot.backend.encoding)  # its tokenizer: a GPT-2's own, or cl100k_base
        chat.update_context_meter()
        show_models(chat, self)
        chat.notify(f"Prompts now go to {slot.name} (model {index + 1} of {len(self.slots)}).")

    def switch_next(self, chat) -> None:
        ready = [i for i, slot in enumerate(self.slots) if slot.state == "ready"]
        if len(ready) < 2:
            chat.notify("One model is loaded: give more with --model, or /model add PATH.", severity="warning")
            return
        later = [i for i in ready if i > self.active]
        self.switch(chat, later[0] if later else ready[0])

    def engine(self) -> ModelsEngine:
        """Every ready model, for a comparison across them."""
        return ModelsEngine([slot.backend for slot in self.ready()])


def show_models(chat, shelf: ModelShelf) -> None:
    """The sidebar's list of models (shown once there is more than one)."""
    from tfchat.tui.widgets.sidebar import PresetSidebar

    chat.query_one(PresetSidebar).show_models(shelf.lines() if len(shelf.slots) > 1 else [])


@slash_command("/model")
def model_command(chat, *words: str) -> None:
    """`/model` lists the models, `/model N|NAME` makes one active, `/model add PATH` loads another."""
    shelf = chat.app.shelf
    if not words:
        chat.transcript.add_notice("Models (f10 or /model N switches):\n" + "\n".join(shelf.lines()))
        return
    if words[0] == "add" and len(words) == 2:
        path = user_path(words[1])
        if not path.exists():
            raise TfchatError(f"{path}: no such file or folder")
        shelf.slots.append(ModelSlot(path))
        show_models(chat, shelf)
        chat.notify(f"Loading {path.name} beside the others…")
        chat.app.load_more_models()
        return
    if len(words) != 1:
        raise TfchatError("usage: /model [N|NAME] or /model add PATH")
    shelf.switch(chat, shelf.find(words[0]))


def announce_loaded(chat, shelf: ModelShelf, slot: ModelSlot) -> None:
    show_models(chat, shelf)
    if slot.state == "ready":
        chat.notify(f"{slot.name} is loaded too: f10 or /model switches, /compare --models compares.")
    else:
        chat.transcript.add_notice(slot.error, error=True)
