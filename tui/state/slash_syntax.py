"""Slash commands typed in the prompt: parsing only; the app carries them out."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

COMMANDS = {
    "/set": "/set KEY VALUE   change a parameter of the active preset for this session",
    "/unset": "/unset KEY       undo a /set of the active preset ('/unset all': every /set, in every preset)",
    "/preset": "/preset NAME     switch to a preset; /preset save NAME keeps the active one, /set changes "
               "included, in your presets file",
    "/mode": "/mode completion|continue   each prompt fresh, or continue the transcript",
    "/compare": "/compare [--blind] [PRESET ...]   each prompt to several presets side by side; "
                "/compare --models [PRESET]: to every loaded model; /compare off",
    "/model": "/model [N|NAME]  list the loaded models, or make one active (f10: the next); /model add PATH loads "
              "another",
    "/score": "/score [--ablate L.H,...] [PATH]   the model's surprise at a file's text (default: the last "
              "exchange's): loss, perplexity, each token coloured; f9 scores the prompt box",
    "/corpus": "/corpus PATH      the text the model was trained on: f12 then shows what an output copies from "
               "it",
    "/clear": "/clear           clear the screen (and the continue context); later exchanges begin a new "
              "conversation",
    "/resume": "/resume          reopen the last conversation: its exchanges, and continue mode goes on from them "
               "(f2, ctrl+r: any conversation)",
    "/save": "/save PATH       save the transcript as Markdown (a new file; /save! PATH replaces one)",
    "/save!": "/save! PATH      save the transcript, replacing the file at PATH",
    "/help": "/help            this help and the keys",
}


@dataclass(frozen=True)
class SlashCommand:
    name: str
    args: tuple[str, ...]


class SlashError(ValueError):
    """A command the user mistyped; shown inline."""


def parse_slash(text: str) -> SlashCommand | None:
    """None for an ordinary prompt; a command for text starting with a known /word."""
    stripped = text.strip()
    if not stripped.startswith("/") or "\n" in stripped:
        return None
    try:
        words = shlex.split(stripped)
    except ValueError as exc:
        raise SlashError(f"{stripped.split()[0]}: {exc}") from None
    name = words[0].lower()
    if name not in COMMANDS:
        if stripped.startswith("//"):
            return None  # '//' escapes: send a prompt that starts with '/'
        raise SlashError(f"unknown command {words[0]}; /help lists them (start with // to send a literal /)")
    return SlashCommand(name, tuple(words[1:]))
