"""Key handling that works in tmux, over SSH and in local terminals."""
from __future__ import annotations

import unicodedata

# alt+digit reaches the app as ESC followed by the digit (tmux, xterm, most SSH
# clients). Textual reads that pair as the character macOS types for
# option+digit, so those characters stand for alt+1..9 here.
_OPTION_DIGITS = "¡™£¢∞§¶•ª"


def _key_name(character: str) -> str:
    """The name Textual gives a key that types `character`."""
    if character.isalnum():
        return character
    return unicodedata.name(character).lower().replace("-", "_").replace(" ", "_")


_OPTION_DIGIT_KEYS = [_key_name(c) for c in _OPTION_DIGITS]


def alt_digit(key: str, character: str | None) -> int | None:
    """The digit of an alt+digit press, however the terminal reported it; else None."""
    if key.startswith("alt+") and key[4:].isdigit() and key[4:] != "0":
        return int(key[4:])
    if key in _OPTION_DIGIT_KEYS:
        return _OPTION_DIGIT_KEYS.index(key) + 1
    if character and character in _OPTION_DIGITS:
        return _OPTION_DIGITS.index(character) + 1
    return None
