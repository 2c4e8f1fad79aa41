"""The attention view of one step (from the token cursor, `a`): where every head looks, one head's
whole matrix, and what switching heads off changes.

The step is the one that chose the token under the cursor: the window is what the model saw
then (past the window, the cropped one), and its last token is the query the model view shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from tfchat.core.errors import TfchatError
from tfchat.core.nn.inside_data import AttentionMaps, NextToken
from tfchat.tui.widgets.attention_grid import matrix_view, model_view, score_scale
from tfchat.tui.widgets.heat import signed_legend, weight_legend
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.token_view import shown_token

GRID_CSS = """
{screen} #title {{ height: auto; max-height: 2; background: $accent 30%; padding: 0 1; }}
{screen} #grid {{ height: 1fr; padding: 0 1; }}
{screen} #detail {{ height: auto; max-height: 8; padding: 0 1; border-top: solid $accent 40%; }}
{screen} #hint {{ height: auto; color: $text-muted; padding: 0 1; }}
"""
MOVES = [Binding("up", "move(-1, 0)", show=False), Binding("down", "move(1, 0)", show=False),
         Binding("left", "move(0, -1)", show=False), Binding("right", "move(0, 1)", show=False),
         Binding("pageup", "move(-10, 0)", show=False), Binding("pagedown", "move(10, 0)", show=False),
         Binding("home", "move(0, -100000)", show=False), Binding("end", "move(0, 100000)", show=False)]


@dataclass(frozen=True)
class Step:
    """Where the view looks: the text before the step, and the token the model chose there."""
    context: str
    forced: tuple[int, ...]
    chosen: int


def candidates_line(label: str, result: NextToken, token_text) -> Text:
    line = Text(f"{label:<11}")
    for token, p in result.top:
        line.append(f"{shown_token(token_text(token)[0])} {p * 100:.1f}%  ")
    return line


class AttentionScreen(Screen[None]):
    DEFAULT_CSS = GRID_CSS.format(screen="AttentionScreen")
    BINDINGS = [Binding("escape", "close", "Back"), Binding("enter", "open_head", "Head"),
                Binding("x", "toggle_head", "Head off/on"), *MOVES]

    @dataclass
    class Answer(Message):
        off: frozenset  # the heads off it was asked with: an answer to an older question is dropped
        maps: AttentionMaps | None
        result: NextToken | None
        problem: str | None

    def __init__(self, backend, step: Step, token_text):
        super().__init__()
        self.backend, self.step, self.token_text = backend, step, token_text
        self.maps: AttentionMaps | None = None
        self.row = 0  # layer * heads + head
        self.column = 0  # the key token
        self.off: frozenset[tuple[int, int]] = frozenset()
        self.baseline: NextToken | None = None  # every head on
        self.ablated: NextToken | None = None  # with `off` switched off

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Attention · the step that chose {shown_token(self.token_text(self.step.chosen)[0])}"
                          " · computing…"), id="title")
        yield Static(id="grid")
        yield Static(id="detail")
        yield NoticeRow()
        yield Static("↑/↓ layer·head · ←/→ token · enter its matrix · x switch the head off/on · esc back",
                     id="hint")

    def on_mount(self) -> None:
        self._ask(self.off, with_maps=True)

    def on_resize(self) -> None:
        self._show()

    @work(thread=True, exit_on_error=False, group="attention")
    def _ask(self, off: frozenset, with_maps: bool = False) -> None:
        step = self.step
        try:
            maps = self.backend.attention(step.context, step.forced) if with_maps else None
            result = self.backend.next_token(step.context, step.forced, tuple(sorted(off)), step.chosen)
            self.post_message(self.Answer(off, maps, result, None))
        except TfchatError as exc:
            self.post_message(self.Answer(off, None, None, str(exc)))

    @on(Answer)
    def _answered(self, message: Answer) -> None:
        if message.problem:
            self.query_one("#title", Static).update(Text(f"Attention · {message.problem}", style="red"))
            return
        if message.off != self.off:
            return
        if message.maps is not None:
            self.maps = message.maps
            self.column = self.maps.size - 1
            self.baseline = message.result
        else:
            self.ablated = message.result
        self._show()

    # ----- what is shown -------------------------------------------------------------------
    @property
    def head(self) -> tuple[int, int]:
        return divmod(self.row, self.maps.num_heads)

    def _show(self) -> None:
        maps = self.maps
        if maps is None:
            return
        layer, head = self.head
        grid = self.query_one("#grid", Static)
        self.query_one("#title", Static).update(Text(
            f"Attention · step choosing {shown_token(self.token_text(self.step.chosen)[0])} · window {maps.size} "
            "tokens · a row per layer·head: where the last token looks"))
        grid.update(model_view(maps, self.off, self.row, self.column, grid.content_region.width or 76,
                               grid.content_region.height or 12))
        weight = maps.last_row(layer, head)[self.column]
        detail = Text(f"L{layer} H{head} → token {self.column + 1} of {maps.size} "
                      f"{shown_token(self.token_text(maps.tokens[self.column])[0])}: weight {weight:.3f}\n")
        detail.append_text(weight_legend())
        detail.append("\n")
        detail.append_text(self._ablation_lines())
        self.query_one("#detail", Static).update(detail)

    def _ablation_lines(self) -> Text:
        base, chosen = self.baseline, self.token_text(self.step.chosen)[0]
        if base is None:
            return Text()
        before = math.exp(base.chosen_logprob)
        if not self.off or self.ablated is None:
            text = candidates_line("all heads", base, self.token_text)
            text.append(f"\n{shown_token(chosen)} {before * 100:.1f}% · x switches the selected head off")
            return text
        after = self.ablated
        heads = ", ".join(f"L{layer}.H{head}" for layer, head in sorted(self.off))
        change = after.chosen_logprob - base.chosen_logprob
        text = candidates_line("all heads", base, self.token_text)
        text.append("\n")
        text.append_text(candidates_line("heads off", after, self.token_text))
        text.append(f"\n{heads} off: {shown_token(chosen)} {before * 100:.1f}% → "
                    f"{math.exp(after.chosen_logprob) * 100:.1f}% (log-probability {change:+.3f})",
                    style="bold")
        return text

    # ----- keys ------------------------------------------------------------------------------
    def action_move(self, rows: int, columns: int) -> None:
        if self.maps is None:
            return
        self.row = max(0, min(self.row + rows, self.maps.num_layers * self.maps.num_heads - 1))
        self.column = max(0, min(self.column + columns, self.maps.size - 1))
        self._show()

    def action_toggle_head(self) -> None:
        if self.maps is None:
            return
        self.off = self.off ^ {self.head}
        self.ablated = None
        self._show()
        if self.off:
            self._ask(self.off)

    def action_open_head(self) -> None:
        if self.maps is not None:
            layer, head = self.head
            self.app.push_screen(HeadScreen(self.maps, layer, head, self.token_text))

    def action_close(self) -> None:
        self.dismiss(None)


class HeadScreen(Screen[None]):
    """One head's matrix: the weights after the mask and softmax, or (s) the scores before the mask."""

    DEFAULT_CSS = GRID_CSS.format(screen="HeadScreen")
    BINDINGS = [Binding("escape", "close", "Back"), Binding("s", "toggle_scores", "Scores/weights"), *MOVES]

    def __init__(self, maps: AttentionMaps, layer: int, head: int, token_text):
        super().__init__()
        self.maps, self.layer_index, self.head_index = maps, layer, head  # `layer` is Textual's
        self.weights, self.scores = maps.weight_rows(layer, head), maps.score_rows(layer, head)
        self.labels = [token_text(t)[0] for t in maps.tokens]
        self.showing_scores = False
        self.row = self.column = maps.size - 1  # the last query, looking at itself

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="grid")
        yield Static(id="detail")
        yield NoticeRow()
        yield Static("arrows move · s scores/weights · PgUp/PgDn queries · esc back", id="hint")

    def on_mount(self) -> None:
        self._show()

    def on_resize(self) -> None:
        self._show()

    def _show(self) -> None:
        what = ("scores q·k/√d, before the mask" if self.showing_scores
                else "weights, after mask and softmax")
        self.query_one("#title", Static).update(Text(
            f"Layer {self.layer_index}, head {self.head_index} · queries down, keys across · {what}"))
        grid = self.query_one("#grid", Static)
        grid.update(matrix_view(self.scores if self.showing_scores else self.weights, self.labels,
                                self.showing_scores, self.row, self.column, grid.content_region.width or 76,
                                grid.content_region.height or 12))
        q, k = self.row, self.column
        detail = Text(f"query {q + 1} {shown_token(self.labels[q])} → key {k + 1} {shown_token(self.labels[k])}: "
                      f"weight {self.weights[q][k]:.3f} · score {self.scores[q][k]:.3f}"
                      + (" (masked: a key after its query)" if k > q else "") + "\n")
        detail.append_text(signed_legend("score", score_scale(self.scores)) if self.showing_scores
                           else weight_legend())
        self.query_one("#detail", Static).update(detail)

    def action_move(self, rows: int, columns: int) -> None:
        last = self.maps.size - 1
        self.row = max(0, min(self.row + rows, last))
        self.column = max(0, min(self.column + columns, last))
        self._show()

    def action_toggle_scores(self) -> None:
        self.showing_scores = not self.showing_scores
        self._show()

    def action_close(self) -> None:
        self.dismiss(None)
