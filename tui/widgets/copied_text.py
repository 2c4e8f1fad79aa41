"""A text with its copied spans marked by their length, and the legend of those lengths."""
from __future__ import annotations

from rich.text import Text

# (shortest span, background): longer copies stand out more.
LENGTH_BANDS = [(64, "#8a2a6a"), (32, "#9a4f1a"), (16, "#8a7a1a"), (0, "#2f5f8a")]
SPAN_TEXT_COLOUR = "#f0f0f0"
SELECTED_STYLE = "bold reverse"


def length_style(tokens: int) -> str:
    for shortest, colour in LENGTH_BANDS:
        if tokens >= shortest:
            return f"{SPAN_TEXT_COLOUR} on {colour}"
    return f"{SPAN_TEXT_COLOUR} on {LENGTH_BANDS[-1][1]}"


def length_legend(min_tokens: int) -> Text:
    text = Text("copied span, tokens: ")
    bounds = [min_tokens, 16, 32, 64]
    for low, high in zip(bounds, bounds[1:] + [None]):
        if high is not None and high <= low:
            continue
        text.append(f" {max(low, min_tokens)}{f'-{high - 1}' if high else '+'} ", style=length_style(max(low, min_tokens)))
        text.append(" ")
    return text


def marked_text(text: str, offsets: list[int], spans, selected: int | None = None) -> Text:
    """`text` with each span (token ranges, in start order, possibly overlapping) on its length's colour."""
    out, at = Text(), 0
    for index, span in enumerate(spans):
        start, end = max(offsets[span.start], at), offsets[span.end]
        if end <= start:
            continue
        out.append(text[at:start])
        out.append(text[start:end], style=SELECTED_STYLE if index == selected else length_style(span.end - span.start))
        at = end
    out.append(text[at:])
    return out
