"""Generated text as tokens: where each token's text lies, and colours by the model's probability.

A token may hold part of a character; its text then appears with the token
that completes the character, so spans are found by decoding the tokens'
bytes in order, as the stream did.
"""
from __future__ import annotations

import math

from rich.text import Text

from tfchat.core.decode.step_info import StepInfo
from tfchat.core.engine.tokenizer import inline_text

# (lowest probability, background): the model's own probability of the token it produced.
BANDS = [(0.8, "#1f6f3f"), (0.5, "#4f7a28"), (0.2, "#8a7a1a"), (0.05, "#9a4f1a"), (0.0, "#9a2a2a")]
TOKEN_TEXT_COLOUR = "#f0f0f0"
CURSOR_STYLE = "bold reverse"


def probability(step: StepInfo) -> float:
    return math.exp(step.logprob)


def band_style(p: float) -> str:
    for lowest, colour in BANDS:
        if p >= lowest:
            return f"{TOKEN_TEXT_COLOUR} on {colour}"
    return f"{TOKEN_TEXT_COLOUR} on {BANDS[-1][1]}"


def legend() -> Text:
    text = Text("token probability: ")
    uppers = [1.0] + [lowest for lowest, _ in BANDS[:-1]]
    for (lowest, _), upper in zip(BANDS, uppers):
        label = f" ≥{lowest:g} " if lowest > 0 else f" <{upper:g} "
        text.append(label, style=band_style(lowest))
        text.append(" ")
    return text


def styled_tokens(output: str, steps: list[StepInfo], spans: list[tuple[int, int]], cursor: int | None = None) -> Text:
    """`output` with each token's text on its probability's colour; the token at `cursor` stands out."""
    # Appended piece by piece, not styled by offset: rich drops carriage returns, which moves offsets.
    text, at = Text(), 0
    for index, (step, (start, end)) in enumerate(zip(steps, spans)):
        if end > start:
            text.append(output[at:start])
            text.append(output[start:end], style=CURSOR_STYLE if index == cursor else band_style(probability(step)))
            at = end
    text.append(output[at:])
    return text


def shown_token(text: str) -> str:
    """A token's text on one line, between quotes."""
    return f"'{inline_text(text)}'"
