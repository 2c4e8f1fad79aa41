"""What the chat says of its backend (`tui.state.backend_state`) while it has none: loading, waiting for a
server, or failed; and the line when a server answers at last."""
from __future__ import annotations

from textual.css.query import NoMatches

from tfchat.tui.transcript.pane import Notice
from tfchat.tui.widgets.status_line import StatusLine

NO_MODEL_HELP = ("No model found at {path}.\n"
                 "Train one on a text file:   tfchat train my_text.txt   (writes model/model.ckpt)\n"
                 "or point tfchat at one:     tfchat --model path/to/model.ckpt   (or set $TFCHAT_MODEL)")
RETRY_NOTICE_ID = "server-wait"


def _wait_notice(chat) -> Notice | None:
    try:
        return chat.transcript.query_one(f"#{RETRY_NOTICE_ID}", Notice)
    except NoMatches:
        return None


def show_retrying(chat, reason: str, delay_s: float, tries: int) -> None:
    """A server that did not answer: one notice that counts the tries; prompts queue."""
    chat.backend_state.retrying(tries)
    chat.query_one(StatusLine).state = chat.backend_state.state
    line = (f"{reason}. Trying again in {delay_s:g} s (tried {tries} time{'s' * (tries > 1)}); "
            "prompts you send wait for it, ctrl+r tries now.")
    notice = _wait_notice(chat)
    if notice is None:
        chat.transcript.add_notice(line, error=True, id=RETRY_NOTICE_ID)
    else:
        notice.say(line, error=True)


def show_ready(chat) -> None:
    chat.backend_state.ready()
    chat.query_one(StatusLine).state = chat.backend_state.state
    notice = _wait_notice(chat)
    if notice is not None:
        notice.say(f"The server answered after {chat.backend_state.retries + 1} tries; connected.")


def show_failed(chat, reason: str, missing_model: bool) -> None:
    chat.backend_state.failed(missing_model)
    chat.query_one(StatusLine).state = chat.backend_state.state
    chat.transcript.add_notice(NO_MODEL_HELP.format(path=reason) if missing_model else reason, error=True)
    pending = chat.session.pending
    if pending:
        chat.transcript.add_notice(f"{len(pending)} queued prompt(s) cannot run without a model.", error=True)
