"""Colour scales for the attention views and the positional-encoding table, with their legends.

Cells are one character wide and coloured by background, so a window of 128 tokens is 128 cells;
each scale has a legend that says what a colour means.
"""
from __future__ import annotations

import math

from rich.text import Text

# Attention weights, 0 to 1: dark (ignored) to bright (attended to). Steps on a square-root scale:
# over a window of a hundred tokens most weights are small, and a linear scale would show them all dark.
# Colours far enough apart to stay distinct in a 256-colour terminal (tmux's default).
WEIGHT_RAMP = ["#1c1c1c", "#30306a", "#2f4fa8", "#2a7fb8", "#1fa890", "#5fc05a", "#b8d838", "#ffe02a"]
# Scores and encodings, signed: blue below zero, red above, dark near it.
NEGATIVE_RAMP = ["#1c2333", "#23406e", "#2d62a8", "#4a8fe0"]
POSITIVE_RAMP = ["#33201c", "#6e3323", "#a8482d", "#e06a4a"]
MASKED = "#0b0b0b"  # above the diagonal: positions a query never sees


def weight_colour(weight: float) -> str:
    step = min(len(WEIGHT_RAMP) - 1, max(0, int(math.sqrt(max(weight, 0.0)) * len(WEIGHT_RAMP))))
    return WEIGHT_RAMP[step]


def weight_floor(step: int) -> float:
    """The smallest weight shown in WEIGHT_RAMP[step]."""
    return (step / len(WEIGHT_RAMP)) ** 2


def signed_colour(value: float, scale: float) -> str:
    """`value` against `scale` (the largest magnitude shown): the further from 0, the brighter."""
    if scale <= 0:
        return NEGATIVE_RAMP[0]
    ramp = POSITIVE_RAMP if value >= 0 else NEGATIVE_RAMP
    step = min(len(ramp) - 1, int(abs(value) / scale * len(ramp)))
    return ramp[step]


def weight_legend() -> Text:
    """Each colour with the smallest weight it shows: '≥.02' and so on."""
    text = Text("weight ")
    for step, colour in enumerate(WEIGHT_RAMP):
        floor = weight_floor(step)
        label = f"{floor:.2f}".lstrip("0") if step else "0"
        text.append(f" {label:>3} ",
                    style=("black" if step >= len(WEIGHT_RAMP) - 2 else "white") + f" on {colour}")
    text.append(" to 1")
    return text


def signed_legend(label: str, scale: float) -> Text:
    text = Text(f"{label} ")
    for colour in reversed(NEGATIVE_RAMP):
        text.append("  ", style=f"on {colour}")
    text.append(" 0 ")
    for colour in POSITIVE_RAMP:
        text.append("  ", style=f"on {colour}")
    text.append(f"  ±{scale:.2f} at the ends")
    return text
