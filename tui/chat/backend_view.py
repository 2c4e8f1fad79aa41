"""What the chat says of its backend while it has none: loading, waiting for a server, or failed."""
from __future__ import annotations

from typing import TYPE_CHECKING

from textual.css.query import NoMatches

from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.transcript.pane import Notice

if TYPE_CHECKING:
    from tfchat.tui.chat.screen import ChatScreen

NO_MODEL_HELP = ("No model found at {path}.\n"
                 "Train one on a text file:   tfchat train my_text.txt   (writes model/model.ckpt)\n"
                 "or point tfchat at one:     tfchat --model path/to/model.ckpt   (or set $TFCHAT_MODEL)")
RETRY_NOTICE_ID = "server-wait"


class BackendState:
    def __init__(self, chat: ChatScreen):
        self.chat = chat
        self.retries = 0  # tries that found no server, for the line that says it answered

    def _status(self) -> StatusLine:
        return self.chat.query_one(StatusLine)

    def _wait_notice(self) -> Notice | None:
        try:
            return self.chat.transcript.query_one(f"#{RETRY_NOTICE_ID}", Notice)
        except NoMatches:
            return None

    def retrying(self, reason: str, delay_s: float, tries: int) -> None:
        """A server that did not answer: say so in one notice that counts the tries; prompts queue."""
        self.retries = tries
        self._status().state = "retrying"
        line = (f"{reason}. Trying again in {delay_s:g} s (tried {tries} time{'s' * (tries > 1)}); "
                "prompts you send wait for it, ctrl+r tries now.")
        notice = self._wait_notice()
        if notice is None:
            self.chat.transcript.add_notice(line, error=True, id=RETRY_NOTICE_ID)
        else:
            notice.say(line, error=True)

    def ready(self) -> None:
        self._status().state = "ready"
        notice = self._wait_notice()
        if notice is not None:
            notice.say(f"The server answered after {self.retries + 1} tries; connected.")

    def failed(self, reason: str, missing_model: bool) -> None:
        status = self._status()
        if missing_model:
            status.state = "no model"
            self.chat.transcript.add_notice(NO_MODEL_HELP.format(path=reason), error=True)
        else:
            status.state = "failed"
            self.chat.transcript.add_notice(reason, error=True)
        pending = self.chat.session.pending
        if pending:
            self.chat.transcript.add_notice(f"{len(pending)} queued prompt(s) cannot run without a model.",
                                            error=True)
