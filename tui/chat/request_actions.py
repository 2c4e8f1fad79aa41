"""The requests the chat's keys make from what came before: ctrl+r, ctrl+g, a prompt or a conversation
from the history."""
from __future__ import annotations

from tfchat.core.errors import TfchatError
from tfchat.tui.chat.conversation_actions import reopen_conversation
from tfchat.tui.screens.history_screen import HistoryChoice
from tfchat.tui.state.requests import ContinueRequest, PromptRequest, RegenerateRequest, Request
from tfchat.tui.widgets.prompt_input import PromptInput


def regenerate_request(chat) -> Request | None:
    """ctrl+r: the last prompt again, as prompts go now (in compare mode, the comparison)."""
    last = chat.session.last_prompt
    if last is None:
        return None
    if chat.compare.presets:
        return chat.compare.request(last.prompt, last.mode, chat.presets.params_for)
    return RegenerateRequest(last.prompt, chat.presets.name, chat.current_params(), last.mode)


def continue_request(chat) -> Request | None:
    """ctrl+g: more of the last exchange; a column kept from a comparison goes on under its own preset."""
    if not chat.session.context_log and chat.session.active is None:
        return None
    last = chat.transcript.last_exchange()
    kept = last is not None and last.kept_from_comparison and chat.session.active is None
    preset = last.preset if kept else chat.presets.name
    return ContinueRequest("", preset, chat.presets.params_for(preset), chat.mode)


def take_history_choice(chat, choice: HistoryChoice | None) -> None:
    """A past prompt from the browser: sent at once, or put in the prompt box to edit."""
    if choice is None:
        return
    if choice.conversation is not None:
        try:
            reopen_conversation(chat, choice.conversation)
        except TfchatError as exc:
            chat.transcript.add_notice(str(exc), error=True)
        return
    prompt = chat.query_one(PromptInput)
    if choice.send:
        prompt.remember(choice.prompt)
        chat.enqueue(PromptRequest(choice.prompt, chat.presets.name, chat.current_params(), chat.mode))
    else:
        prompt.load_for_editing(choice.prompt)
