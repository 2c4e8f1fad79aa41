"""The chat's actions on the model shelf (`tui.state.model_shelf`): f10 and `/model` switch the active model,
`/model add PATH` loads another; the status line, the sidebar and the token counts follow."""
from __future__ import annotations

from tfchat.core.errors import TfchatError
from tfchat.core.settings.weights_choice import weights_label
from tfchat.core.system.paths import user_path
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.state.model_shelf import ModelSlot
from tfchat.tui.widgets.sidebar import PresetSidebar
from tfchat.tui.widgets.status_line import StatusLine


def switch_model(chat, index: int) -> None:
    """Make the shelf's model `index` the one prompts go to."""
    shelf = chat.shelf
    slot = shelf.activate(index)
    chat.engine = slot.backend
    chat.model_label, chat.model_source = slot.name, str(slot.path)
    status = chat.query_one(StatusLine)
    status.model_name, status.device = slot.name, str(slot.backend.device)
    status.parameters, status.context_length = slot.backend.parameter_count, slot.backend.config.context_length
    status.weights = weights_label(slot.backend.describe().get("weights", "exact"))
    chat.meter.use(slot.backend.encoding)  # its tokenizer: a GPT-2's own, or cl100k_base
    chat.update_context_meter()
    show_models(chat)
    chat.notify(f"Prompts now go to {slot.name} (model {index + 1} of {len(shelf.slots)}).")


def next_model(chat) -> None:
    """f10: the next loaded model."""
    index = chat.shelf.next_ready()
    if index is None:
        chat.notify("One model is loaded: give more with --model, or /model add PATH.", severity="warning")
        return
    switch_model(chat, index)


def show_models(chat) -> None:
    """The sidebar's list of models (shown once there is more than one)."""
    shelf = chat.shelf
    chat.query_one(PresetSidebar).show_models(shelf.lines() if len(shelf.slots) > 1 else [])


@slash_command("/model")
def model_command(chat, *words: str) -> None:
    """`/model` lists the models, `/model N|NAME` makes one active, `/model add PATH` loads another."""
    shelf = chat.shelf
    if not words:
        chat.transcript.add_notice("Models (f10 or /model N switches):\n" + "\n".join(shelf.lines()))
        return
    if words[0] == "add" and len(words) == 2:
        path = user_path(words[1])
        if not path.exists():
            raise TfchatError(f"{path}: no such file or folder")
        shelf.slots.append(ModelSlot(path))
        show_models(chat)
        chat.notify(f"Loading {path.name} beside the others…")
        chat.load_more_models()
        return
    if len(words) != 1:
        raise TfchatError("usage: /model [N|NAME] or /model add PATH")
    switch_model(chat, shelf.find(words[0]))


def announce_loaded(chat, slot: ModelSlot) -> None:
    show_models(chat)
    if slot.state == "ready":
        chat.notify(f"{slot.name} is loaded too: f10 or /model switches, /compare --models compares.")
    else:
        chat.transcript.add_notice(slot.error, error=True)
