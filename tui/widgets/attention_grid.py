"""Drawing attention as grids of one-cell squares, scrolled to keep a cursor in view.

Two grids: the model view (a row per layer and head, the window's tokens across: how much the
step's last token attends to each) and one head's matrix (queries down, keys across, the book's
Q*K plot). Plain functions of the data and the room there is, so they are tested without a screen.
"""
from __future__ import annotations

from rich.text import Text

from tfchat.core.engine.tokenizer import inline_text
from tfchat.core.nn.inside_data import AttentionMaps
from tfchat.tui.widgets.heat import MASKED, signed_colour, weight_colour

HEAD_LABEL = 8  # 'L11 H7✗ '
TOKEN_LABEL = 12  # a query's token, right-aligned, in the matrix
CURSOR_MARK = "●"


def first_shown(cursor: int, total: int, room: int) -> int:
    """The first index to show of `total` in `room` places so that `cursor` is in view, near the middle."""
    if total <= room:
        return 0
    return max(0, min(cursor - room // 2, total - room))


def ruler(start: int, stop: int, cursor: int) -> str:
    """Above the cells: the cursor's column, and a tick every ten tokens."""
    return "".join("▼" if k == cursor else "┆" if k % 10 == 0 else " " for k in range(start, stop))


def model_view(maps: AttentionMaps, off: frozenset, row: int, column: int, width: int, height: int) -> Text:
    """Every layer's and head's attention from the window's last token, `height` lines in `width` cells."""
    T, H = maps.size, maps.num_heads
    rows = maps.num_layers * H
    cells = max(1, width - HEAD_LABEL)
    start = first_shown(column, T, cells)
    stop = min(T, start + cells)
    top = first_shown(row, rows, max(1, height - 1))
    lines = [Text(" " * HEAD_LABEL + ruler(start, stop, column), style="dim")]
    for index in range(top, min(rows, top + max(1, height - 1))):
        layer, head = divmod(index, H)
        switched_off = (layer, head) in off
        label = f"L{layer} H{head}{'✗' if switched_off else ''}"
        line = Text()  # the label's style on the label alone: a line's own style would reach its cells
        line.append(f"{label:<{HEAD_LABEL}}", style=("reverse " if index == row else "") + ("dim" if switched_off else ""))
        weights = maps.last_row(layer, head)
        for k in range(start, stop):
            here = index == row and k == column
            line.append(CURSOR_MARK if here else " ", style=f"bold white on {weight_colour(weights[k])}")
        lines.append(line)
    return Text("\n").join(lines)


def matrix_view(rows: list[list[float]], labels: list[str], scores: bool, query: int, key: int, width: int,
                height: int) -> Text:
    """One head's matrix, queries down (each labelled with its token), keys across.

    Weights: after the mask and softmax, with the masked cells (a key after its query) shown apart.
    Scores: q @ k.T / sqrt(head_size) before the mask, blue below zero and red above."""
    T = len(rows)
    cells = max(1, width - TOKEN_LABEL - 1)
    start = first_shown(key, T, cells)
    stop = min(T, start + cells)
    top = first_shown(query, T, max(1, height - 1))
    scale = score_scale(rows)
    lines = [Text(" " * (TOKEN_LABEL + 1) + ruler(start, stop, key), style="dim")]
    for q in range(top, min(T, top + max(1, height - 1))):
        label = inline_text(labels[q])[-TOKEN_LABEL:]
        line = Text()
        line.append(f"{label:>{TOKEN_LABEL}}", style="reverse" if q == query else "")
        line.append(" ")
        for k in range(start, stop):
            if scores:
                colour = signed_colour(rows[q][k], scale)
            else:
                colour = MASKED if k > q else weight_colour(rows[q][k])
            line.append(CURSOR_MARK if (q, k) == (query, key) else " ", style=f"bold white on {colour}")
        lines.append(line)
    return Text("\n").join(lines)


def score_scale(rows: list[list[float]]) -> float:
    return max((abs(v) for r in rows for v in r), default=0.0)
