"""The book's positional-encoding table as a heatmap: a row per position, a cell per dimension.

PE[pos, 2i] = sin(pos / 10000^(2i/d_model)) and PE[pos, 2i+1] = cos(the same), as chapter 18
computes it (`core.nn.book_model.sinusoidal_positions`), here in plain Python: the inspector runs
in the app's process, which does not load torch.
"""
from __future__ import annotations

import math

from rich.text import Text

from tfchat.tui.widgets.heat import signed_colour, signed_legend

POSITION_LABEL = 5


def encoding(position: int, dimension: int, d_model: int) -> float:
    angle = position * math.exp(-(dimension - dimension % 2) * math.log(10000.0) / d_model)
    return math.sin(angle) if dimension % 2 == 0 else math.cos(angle)


def position_heatmap(context_length: int, d_model: int, width: int) -> Text:
    """Every position down, the first dimensions that fit `width` across; values from -1 to 1."""
    shown = max(1, min(d_model, width - POSITION_LABEL))
    lines = [Text(f"positional encoding: positions down, dimensions 0-{shown - 1} of {d_model} across",
                  style="bold"), signed_legend("value", 1.0)]
    for position in range(context_length):
        line = Text(f"{position:>{POSITION_LABEL - 1}} ", no_wrap=True, overflow="crop")
        for dimension in range(shown):
            line.append(" ", style=f"on {signed_colour(encoding(position, dimension, d_model), 1.0)}")
        lines.append(line)
    return Text("\n", no_wrap=True, overflow="crop").join(lines)
