"""Reopening a past conversation: from the history browser (f2, ctrl+r), /resume, or `tfchat --resume`.

Its exchanges come back into the transcript and into the continue context, and new exchanges go on in
the same conversation of the history.
"""
from __future__ import annotations

from tfchat.core.errors import TfchatError
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.state.conversation import context_log_of, title_shown
from tfchat.tui.state.requests import PromptRequest
from tfchat.tui.transcript.reopened import show_conversation


def reopen_conversation(chat, conversation: int) -> None:
    """Replace the transcript with `conversation`'s exchanges; continue mode goes on from their text."""
    if chat.session.active is not None or chat.session.pending:
        raise TfchatError("a generation is running; reopen the conversation once it ends (esc stops it)")
    keeper = chat.keeper
    about = keeper.read(lambda: keeper.history.conversation(conversation), None)
    exchanges = keeper.read(lambda: keeper.history.conversation_exchanges(conversation), [])
    chat.show_history_problems()
    if about is None or not exchanges:
        raise TfchatError("that conversation has no exchanges in the history")
    chat.transcript.clear()
    show_conversation(chat.transcript, exchanges)
    chat.session.context_log[:] = context_log_of(exchanges)
    typed = [e for e in exchanges if e.kind in ("prompt", "regenerate") and e.prompt]
    if typed:  # ctrl+r sends its last prompt again
        chat.session.last_prompt = PromptRequest(typed[-1].prompt, chat.presets.name, chat.current_params(),
                                                 chat.mode)
    keeper.go_on_with(conversation)
    chat.update_context_meter()
    shown = f"its last {len(exchanges)} of {about.exchanges} exchanges" if about.exchanges > len(exchanges) \
        else f"{about.exchanges} exchange{'s' if about.exchanges != 1 else ''}"
    how = "continue mode goes on from its text" if chat.mode == "continue" else \
        "ctrl+t: continue mode, to go on from its text"
    chat.transcript.add_notice(f"Reopened “{title_shown(about.title)}” ({shown}); {how}.")
    chat.transcript.scroll_end(animate=False)


def resume_last_conversation(chat) -> None:
    """The conversation written to last, other than the one going on."""
    keeper = chat.keeper
    last = keeper.read(lambda: keeper.history.last_conversation(other_than=keeper.conversation), None)
    chat.show_history_problems()
    if last is None:
        raise TfchatError("no earlier conversation in the history to resume")
    reopen_conversation(chat, last)


@slash_command("/resume")
def resume_command(chat) -> None:
    resume_last_conversation(chat)
