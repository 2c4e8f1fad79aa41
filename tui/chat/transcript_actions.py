"""What the chat's plain keys do to the transcript: copy the last output, clear, scroll."""
from __future__ import annotations


def copy_output(chat) -> None:
    last = chat.transcript.last_exchange()
    if last is None or not last.output:
        chat.notify("No output to copy yet.", severity="warning")
        return
    chat.app.copy_to_clipboard(last.output)
    chat.notify(f"Copied {len(last.output)} characters (OSC 52).")


def clear_transcript(chat) -> None:
    """Clear the screen and the continue context; a running exchange stays, and goes on."""
    chat.transcript.clear(keep=chat.session.active_number)
    chat.session.context_log.clear()
    chat.keeper.begin_new_conversation()
    chat.update_context_meter()
    if chat.session.active_number is not None:
        chat.notify("Cleared; the running generation goes on (esc stops it).")


def scroll_transcript(transcript, where: str) -> None:
    {"page_up": transcript.scroll_page_up, "page_down": transcript.scroll_page_down,
     "home": transcript.scroll_home, "end": transcript.scroll_end}[where](animate=False)
