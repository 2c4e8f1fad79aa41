"""The chat's actions in compare mode (`tui.state.compare_choice`): `/compare` chooses what is compared,
f7 keeps a column (it becomes the exchange the session continues from). Escape stops every column;
every column goes to the history with its preset.
"""
from __future__ import annotations

from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.errors import TfchatError
from tfchat.tui.chat.model_actions import switch_model
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.state.compare_choice import CompareChoice
from tfchat.tui.state.requests import CompareRequest
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.transcript.stats_line import stats_line
from tfchat.tui.widgets.status_line import StatusLine


def keep_column(chat) -> None:
    """Keep the next column of the chat's latest compare: it becomes an exchange the session continues from."""
    transcript = chat.transcript
    views = [v for v in transcript.children if isinstance(v, CompareView)]
    view = views[-1] if views else None
    if view is None or view.number == chat.session.active_number:
        chat.notify("No finished comparison to keep a column of." if view is None else
                    "The comparison is still running; esc stops it.", severity="warning")
        return
    column = view.keep(0 if view.kept is None else (view.kept + 1) % len(view.columns))
    if view.models:  # a comparison of models: the session goes on with the kept column's model
        switch_model(chat, view.model_slots[view.kept])
    if view.kept_exchange is not None:  # keeping another column replaces the one kept before
        view.kept_exchange.remove()
        chat.session.context_log.remove(view.kept_entry)
    exchange = transcript.add_exchange(view.prompt, column.preset)
    exchange.kept_from_comparison = True  # ctrl+g continues it under its own preset
    exchange.base_context = view.context
    exchange.branch.begin_generation()
    exchange.mark_generation_start(chat.presets.params_for(column.preset).as_dict(), "kept", column.preset)
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
    """`/compare --models [PRESET]`: each prompt to every loaded model under one preset, a column each;
    a model still loading is waited for."""
    chat.presets.catalog.get(preset)
    shelf = chat.shelf
    indices = shelf.comparable_indices()
    if len(indices) < 2:
        raise TfchatError("comparing models needs two loaded: give more with --model, or /model add PATH")
    chat.query_one(StatusLine).compare = chat.compare.choose([preset], shelf=shelf)
    names = ", ".join(shelf.slots[i].name for i in indices)
    loading = shelf.loading_names(indices)
    if loading:
        chat.transcript.add_notice(f"{' and '.join(loading)} {'is' if len(loading) == 1 else 'are'} still loading: "
                                   f"each prompt goes to {names} under {preset}, the first once "
                                   f"{'it is' if len(loading) == 1 else 'they are'} ready. f6 turns it off.")
        return
    chat.notify(f"Compare mode: each prompt goes to {names} under {preset}. f6 turns it off.")


def models_loaded_for(chat, request) -> bool:
    """Whether `request` can start: a comparison of models waits while one of its models loads; one that
    failed to load is left out of it (said in a notice)."""
    if not isinstance(request, CompareRequest) or not request.models:
        return True
    shelf = chat.shelf
    if shelf.loading_names(request.model_slots):
        return False
    failed = [i for i in request.model_slots if shelf.slots[i].state != "ready"]
    if failed:
        kept = [(slot, name) for slot, name in zip(request.model_slots, request.models) if slot not in failed]
        request.model_slots, request.models = [slot for slot, _ in kept], [name for _, name in kept]
        request.presets, request.column_params = request.presets[:len(kept)], request.column_params[:len(kept)]
        chat.transcript.add_notice(f"{', '.join(shelf.slots[i].name for i in failed)} did not load: compared "
                                   f"without {'it' if len(failed) == 1 else 'them'}.", error=True)
    return True
