"""Scoring a text in the app: the model's surprise at it, token by token (tui.transcript.score_view shows it).

f9 scores the prompt box's text; `/score PATH` a file's, `/score` alone the last exchange's whole
text; `--ablate L.H[,L.H...]` switches heads off and shows the change in loss against all heads on.
"""
from __future__ import annotations

from tfchat.core.commands.score import MAX_SHOWN_TEXT_BYTES, parse_heads, read_text
from tfchat.core.errors import PromptError
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.state.requests import ScoreRequest
from tfchat.tui.transcript.score_view import ScoreView
from tfchat.tui.widgets.prompt_input import PromptInput

__all__ = ["ScoreView", "score_command", "score_prompt"]


def enqueue_score(chat, text: str, source: str, off: tuple = ()) -> None:
    if not text.strip():
        raise PromptError("nothing to score: type or paste a text into the prompt box and press f9, "
                          "or give /score a file")
    chat.enqueue(ScoreRequest(text, chat.presets.name, chat.current_params(), chat.mode, source=source, off=off))


def score_prompt(chat) -> None:
    """f9: the prompt box's text, which stays there (to edit and score again)."""
    try:
        enqueue_score(chat, chat.query_one(PromptInput).text, "the prompt box")
    except PromptError as exc:
        chat.notify(str(exc), severity="warning")


@slash_command("/score")
def score_command(chat, *words: str) -> None:
    words = list(words)
    off: tuple = ()
    if "--ablate" in words:
        at = words.index("--ablate")
        if at + 1 >= len(words):
            raise PromptError("--ablate takes heads as LAYER.HEAD, comma-separated (1.0,2.3)")
        off = parse_heads(words[at + 1])
        del words[at: at + 2]
    if len(words) > 1:
        raise PromptError("give one file, or none to score the prompt box's text")
    if words:
        enqueue_score(chat, read_text(words[0], MAX_SHOWN_TEXT_BYTES), words[0], off)
        return
    last = chat.transcript.last_exchange()
    if last is None:
        raise PromptError("no exchange to score yet: give a file, or press f9 on the prompt box's text")
    enqueue_score(chat, last.prompt + last.output, "the last exchange", off)
