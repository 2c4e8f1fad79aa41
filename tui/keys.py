"""Key handling that works in tmux, over SSH and in local terminals."""
from __future__ import annotations

# alt+digit reaches the app as ESC followed by the digit (tmux, xterm, most SSH
# clients). Textual reads that pair as the character macOS types for
# option+digit, so those characters stand for alt+1..9 here.
_OPTION_DIGITS = "¡™£¢∞§¶•ª"


def alt_digit(key: str, character: str | None) -> int | None:
    """The digit of an alt+digit press, however the terminal reported it; else None."""
    if key.startswith("alt+") and key[4:].isdigit() and key[4:] != "0":
        return int(key[4:])
    if character and len(character) == 1 and character in _OPTION_DIGITS:
        return _OPTION_DIGITS.index(character) + 1
    return None
