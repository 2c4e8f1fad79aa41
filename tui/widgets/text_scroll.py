"""Scrolling a text box so that a place in its text shows: the token cursor's token, the overlap view's span."""
from __future__ import annotations

from rich.text import Text


def keep_offset_in_sight(box, shown, text: Text, offset: int, console) -> None:
    """Scroll `box` (a VerticalScroll holding the Static `shown`, which shows `text`) so the line holding
    character `offset` is on screen, near the middle when it has to move."""
    width = shown.content_region.width
    if width <= 0 or box.content_region.height <= 0:
        return
    # The text up to the offset wraps as the whole does up to there: its last line is the offset's.
    line = len(text[: offset + 1].wrap(console, width)) - 1
    top, height = box.scroll_y, box.content_region.height
    if not top <= line < top + height:
        box.scroll_to(y=max(0, line - height // 2), animate=False)
