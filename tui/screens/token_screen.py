"""The token cursor: walk an exchange token by token, see each step's candidates, branch from one.

The panel shows, for the token under the cursor, the model's ten likeliest
next tokens with their probabilities, raw (the model's own) and after the
preset's penalty, temperature and filters (what the sampler drew from), the
one chosen, and the entropy. Enter regenerates from that step with the
selected candidate instead: a branch. `l` shows the logit lens for the step, with how sure each
block is (entropy) and how far from the output (KL); `a` opens the attention at that step.
"""
from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from tfchat.core.decode.step_info import StepInfo
from tfchat.core.errors import TfchatError
from tfchat.tui.screens.attention_screen import AttentionScreen, Step
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.text_scroll import keep_offset_in_sight
from tfchat.tui.widgets.token_view import band_style, probability, shown_token, styled_tokens

BAR_WIDTH = 10
CORPUS_SHOWN = 5  # the training text's likeliest continuations listed
LENS_TOP = 5
LENS_SHOWN = 3  # of LENS_TOP, what a wide panel holds; a narrow one shows as many as fit
# A lens cell: the token, quotes included, then its percentage; a row must fit the panel's
# content width (its 64 columns less padding and border, or the screen's width when stacked).
LENS_TOKEN_WIDTH = 11
LENS_CELL_WIDTH = 1 + LENS_TOKEN_WIDTH + 5  # ' ' token '  12%'
LENS_BLOCK_WIDTH = 6  # 'output'
# Below this width the panel goes under the text instead of beside it: beside, at 80 columns,
# the text had 14 columns ('Cust / omer / s or').
STACKED_BELOW = 100


def lens_cells_fitting(width: int) -> int:
    """How many lens cells a row of `width` cells holds, beside the block's name (at least one)."""
    return max(1, min(LENS_SHOWN, (width - LENS_BLOCK_WIDTH - 1) // LENS_CELL_WIDTH))


def short_token(text: str, width: int = LENS_TOKEN_WIDTH) -> str:
    """A token between quotes in at most `width` cells: cut inside the quotes, so both show."""
    shown = shown_token(text)
    return shown if len(shown) <= width else shown[: width - 2] + "…'"


def lens_line(block: str, cells: list[tuple[str, float]]) -> Text:
    """One block's row: its name, then its likeliest tokens, each padded to one width."""
    line = Text(f"{block:>{LENS_BLOCK_WIDTH}} ")
    for token, p in cells:
        line.append(f" {short_token(token):<{LENS_TOKEN_WIDTH}}", style=band_style(p))
        line.append(f"{p * 100:4.0f}%")
    return line


def spread_lines(spread: list[tuple[float, float]]) -> list[Text]:
    """Each block's entropy and KL divergence from the output, as small bars scaled to the largest."""
    if not spread:
        return []
    top_entropy = max(e for e, _ in spread) or 1.0
    top_kl = max(d for _, d in spread) or 1.0
    lines = [Text(f"{'block':>{LENS_BLOCK_WIDTH}}  {'entropy, nats':<17}    KL from the output, nats", style="dim")]
    for layer, (entropy, kl) in enumerate(spread, start=1):
        block = "output" if layer == len(spread) else str(layer)
        lines.append(Text(f"{block:>{LENS_BLOCK_WIDTH}}  {bar(entropy / top_entropy)} {entropy:6.2f}  "
                          f"  {bar(kl / top_kl)} {kl:6.2f}"))
    return lines


def bar(p: float, width: int = BAR_WIDTH) -> str:
    if math.isnan(p):  # not known (a server that reports the model's logprobs only)
        return " " * width
    filled = round(p * width)
    return "█" * filled + "░" * (width - filled)


def percent(p: float, width: int = 5) -> str:
    return f"{'—':>{width}} " if math.isnan(p) else f"{p * 100:{width}.1f}%"


def nats(entropy: float) -> str:
    return "not reported" if math.isnan(entropy) else f"{entropy:.2f} nats"


class TokenScreen(Screen[tuple[int, int] | None]):
    """Dismissed with (step index, candidate row) to branch from, or None."""

    DEFAULT_CSS = """
    TokenScreen #title { height: 1; background: $accent 30%; padding: 0 1; }
    TokenScreen #text-box { width: 1fr; padding: 0 1; }
    TokenScreen #panel { width: 64; height: 1fr; padding: 0 1; border-left: solid $accent 40%; }
    TokenScreen.-stacked #body { layout: vertical; }
    TokenScreen.-stacked #text-box { width: 1fr; height: 2fr; }
    TokenScreen.-stacked #panel { width: 1fr; height: 3fr; border-left: none; border-top: solid $accent 40%; }
    TokenScreen #panel > Static { height: auto; }
    TokenScreen #lens, TokenScreen #corpus { margin: 1 0 0 0; }
    TokenScreen #hint { height: auto; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("left", "move(-1)", "Token ←", show=False),
        Binding("right", "move(1)", "Token →", show=False),
        # priority: the focused text box would take home/end to scroll itself instead.
        Binding("home", "move_to(0)", show=False, priority=True),
        Binding("end", "move_to(-1)", show=False, priority=True),
        Binding("up", "choose(-1)", show=False),
        Binding("down", "choose(1)", show=False),
        Binding("enter", "branch", "Branch"),
        Binding("l", "toggle_lens", "Lens"),
        Binding("a", "attention", "Attention"),
        # The panel (candidates, then the lens) can be taller than the screen: these scroll it.
        Binding("pagedown", "scroll_panel(1)", show=False, priority=True),
        Binding("pageup", "scroll_panel(-1)", show=False, priority=True),
        Binding("left_square_bracket", "switch_branch(-1)", "Branch ←", show=False),
        Binding("right_square_bracket", "switch_branch(1)", "Branch →", show=False),
    ]

    class LensReady(Message):
        def __init__(self, key: tuple[int, int], rows: list | None, spread: list | None, problem: str | None):
            super().__init__()
            self.key, self.rows, self.spread, self.problem = key, rows, spread, problem

    def __init__(self, view, token_text, backend=None, corpus=None):
        """`view`: the exchange; `token_text(id)` -> (text, bytes); `backend`: the model (the lens and
        the attention view ask it), None while none is loaded; `corpus`: the training text (a core.corpus
        TrainingText), whose continuations of the context show beside the model's candidates."""
        super().__init__()
        self.view = view
        self.token_text = token_text
        self.backend = backend
        self.corpus = corpus
        self.cursor = len(view.branch.steps) - 1
        self.row = 0  # the candidate selected in the panel
        self.lens_shown = False
        self._lens_to_top = False  # the lens's rows are to be scrolled into sight once laid out
        self._lens: dict[tuple[int, int], list | str] = {}  # (branch, step) -> rows, or the problem
        self._spread: dict[tuple[int, int], list] = {}  # (branch, step) -> each block's (entropy, KL)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="body"):
            with VerticalScroll(id="text-box"):
                yield Static(id="text")
            with VerticalScroll(id="panel"):
                yield Static(id="step")
                yield Static(id="candidates")
                yield Static(id="corpus")
                yield Static(id="lens")
        yield NoticeRow()
        yield Static("←/→ token · ↑/↓ candidate · enter branch · l logit lens · a attention · PgUp/PgDn panel · "
                     "[ ] branches · esc back", id="hint")

    def on_mount(self) -> None:
        self.watch(self.query_one("#panel"), "virtual_size", self._panel_grew, init=False)
        self.set_class(self.app.size.width < STACKED_BELOW, "-stacked")
        self._show()

    def on_resize(self) -> None:
        stacked = self.app.size.width < STACKED_BELOW
        if stacked != self.has_class("-stacked"):
            self.set_class(stacked, "-stacked")
            self.call_after_refresh(self._show)

    # ----- what is shown ----------------------------------------------------------
    @property
    def steps(self) -> list[StepInfo]:
        return self.view.branch.steps

    def _token_bytes(self, token: int) -> list[int]:
        return self.token_text(token)[1]

    def _show(self) -> None:
        view, steps = self.view, self.steps
        branches = f" · branch {view.branch_index + 1}/{len(view.branches)}" if len(view.branches) > 1 else ""
        if not steps:  # a branch whose generation failed
            self.query_one("#title", Static).update(Text(f"Tokens{branches} · no tokens in this branch"))
            return
        self.cursor = max(0, min(self.cursor, len(steps) - 1))
        step = steps[self.cursor]
        self.query_one("#title", Static).update(
            Text(f"Tokens{branches} · token {self.cursor + 1} of {len(steps)} · entropy {nats(step.entropy)}"))
        spans = view.branch.spans(self._token_bytes)
        text = Text(view.prompt, style="bold") + styled_tokens(view.output, steps, spans, cursor=self.cursor)
        self.query_one("#text", Static).update(text)
        self.call_after_refresh(self._keep_cursor_in_sight, text, len(view.prompt) + spans[self.cursor][0])
        self._show_step(step)
        self._show_lens()

    def _keep_cursor_in_sight(self, text: Text, offset: int) -> None:
        """Scroll the text so the cursor's line shows (a stacked text box is a few lines tall)."""
        keep_offset_in_sight(self.query_one("#text-box", VerticalScroll), self.query_one("#text", Static), text,
                             offset, self.app.console)

    def _show_step(self, step: StepInfo) -> None:
        p = probability(step)
        info = Text()
        info.append(shown_token(self.token_text(step.id)[0]), style=band_style(p))
        info.append(f"  id {step.id}" + ("  · drafted, verified" if step.drafted else ""))
        info.append(f"\nmodel {p * 100:.1f}% · sampler {percent(step.sampled_prob, 0).strip()} · "
                    f"entropy {nats(step.entropy)}")
        self.query_one("#step", Static).update(info)
        table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)  # must fit the panel
        table.add_column("", width=2)
        table.add_column("candidate", max_width=18, no_wrap=True, overflow="ellipsis")
        table.add_column("model", no_wrap=True)
        table.add_column("sampler", no_wrap=True)
        for index, alternative in enumerate(step.top):
            raw = math.exp(alternative.logprob)
            mark = ("▶" if index == self.row else " ") + ("✓" if alternative.id == step.id else " ")
            table.add_row(mark, shown_token(self.token_text(alternative.id)[0]),
                          f"{bar(raw)} {raw * 100:5.1f}%", f"{bar(alternative.sampled_prob)} "
                          f"{percent(alternative.sampled_prob)}",
                          style="bold" if index == self.row else None)
        if all(a.id != step.id for a in step.top):  # a draw from outside the ten likeliest
            table.add_row(" ✓", shown_token(self.token_text(step.id)[0]), f"{bar(p)} {p * 100:5.1f}%",
                          f"{bar(step.sampled_prob)} {percent(step.sampled_prob)}")
        self.query_one("#candidates", Static).update(table)
        self._show_corpus(step)

    def _show_corpus(self, step: StepInfo) -> None:
        """What the training text continues the context with, after its longest suffix found there."""
        shown = self.query_one("#corpus", Static)
        shown.display = self.corpus is not None
        if self.corpus is None:
            return
        context = self.corpus.encoding.encode(self.view.base_context or "", disallowed_special=()) + \
            self.view.branch.token_ids(self.cursor)
        found = self.corpus.continuations(context, top=CORPUS_SHOWN)
        line = Text("training text", style="bold")
        if found.suffix == 0:
            line.append(": the context's last token never occurs there with a token after it")
            shown.update(line)
            return
        line.append(f", after the context's last {found.suffix} token{'s' if found.suffix != 1 else ''} "
                    f"({found.total} time{'s' if found.total != 1 else ''}):")
        for token, count in found.top:
            line.append("\n  ")
            line.append(f"{shown_token(self.token_text(token)[0])} ×{count}",
                        style="bold" if token == step.id else None)
        shown.update(line)

    def lens_rows(self, branch: int, step: int):
        """The logit lens computed for that step of that branch (one row per layer), a problem, or None."""
        return self._lens.get((branch, step))

    def _show_lens(self) -> None:
        lens = self.query_one("#lens", Static)
        lens.display = self.lens_shown
        if not self.lens_shown:
            return
        key = (self.view.branch_index, self.cursor)
        rows = self._lens.get(key)
        if rows is None:
            lens.update(Text("logit lens: computing…"))
            self._compute_lens(key, self.view.base_context or "", tuple(self.view.branch.token_ids(self.cursor)))
            return
        if isinstance(rows, str):
            lens.update(Text(f"logit lens: {rows}", style="red"))
            return
        shown = lens_cells_fitting(lens.content_region.width or 62)
        lines = [Text("logit lens: each block's guess here", style="bold"),
                 Text(f"{'block':>{LENS_BLOCK_WIDTH}} " + "".join(f"{f' #{rank}':<{LENS_CELL_WIDTH}}"
                                                                  for rank in range(1, shown + 1)).rstrip(),
                      style="dim")]
        for layer, row in enumerate(rows, start=1):
            cells = [(self.token_text(token)[0], p) for token, p in row[:shown]]
            lines.append(lens_line("output" if layer == len(rows) else str(layer), cells))
        lines += spread_lines(self._spread.get(key, []))
        lens.update(Text("\n").join(lines))

    def _scroll_to_lens(self) -> None:
        """The lens's first line at the panel's top, so as many of its rows show as fit: once the panel
        has grown to hold its rows (a scroll asked before is cut short at the old height)."""
        self._lens_to_top = True
        self._panel_grew()

    def _panel_grew(self) -> None:
        if not self._lens_to_top:
            return
        panel, lens = self.query_one("#panel", VerticalScroll), self.query_one("#lens")
        panel.scroll_to_widget(lens, top=True, animate=False, immediate=True)
        if panel.max_scroll_y >= lens.virtual_region.y or panel.max_scroll_y >= lens.virtual_region.bottom:
            self._lens_to_top = False  # reached, or the whole lens shows: the user's scrolling is theirs again

    @work(thread=True, exit_on_error=False, group="lens")
    def _compute_lens(self, key: tuple[int, int], context: str, forced: tuple[int, ...]) -> None:
        try:
            rows, problem = self.backend.logit_lens(context, forced, LENS_TOP), None
            spread = self.backend.lens_spread(context, forced)
        except TfchatError as exc:
            rows, spread, problem = None, None, str(exc)
        self.post_message(self.LensReady(key, rows, spread, problem))

    @on(LensReady)
    def _lens_ready(self, message: LensReady) -> None:
        self._lens[message.key] = message.rows if message.rows is not None else message.problem
        self._spread[message.key] = message.spread or []
        self._show_lens()
        if message.key == (self.view.branch_index, self.cursor):  # its rows came in below the panel's fold
            self._scroll_to_lens()

    # ----- keys -------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool:
        # Keys that act on a token do nothing on a branch without any.
        return bool(self.steps) or action in ("close", "switch_branch")

    def action_move(self, delta: int) -> None:
        self.cursor += delta
        self.row = 0
        self._show()

    def action_move_to(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self.steps) - 1
        self.row = 0
        self._show()

    def action_choose(self, delta: int) -> None:
        self.row = max(0, min(self.row + delta, len(self.steps[self.cursor].top) - 1))
        self._show_step(self.steps[self.cursor])

    def action_scroll_panel(self, pages: int) -> None:
        panel = self.query_one("#panel", VerticalScroll)
        (panel.scroll_page_down if pages > 0 else panel.scroll_page_up)(animate=False)

    def action_attention(self) -> None:
        if self.backend is None:
            self.notify("The attention view needs the model loaded.", severity="warning")
            return
        step = Step(self.view.base_context or "", tuple(self.view.branch.token_ids(self.cursor)),
                    self.steps[self.cursor].id)
        self.app.push_screen(AttentionScreen(self.backend, step, self.token_text))

    def action_toggle_lens(self) -> None:
        if self.backend is None:
            self.notify("The logit lens needs the model loaded.", severity="warning")
            return
        self.lens_shown = not self.lens_shown
        self._show_lens()
        if self.lens_shown:  # below the candidates: on a short terminal, out of sight
            self._scroll_to_lens()

    def action_switch_branch(self, delta: int) -> None:
        count = len(self.view.branches)
        if count == 1:
            self.notify("This exchange has one branch; enter on another candidate makes one.")
            return
        self.view.show_branch((self.view.branch_index + delta) % count)
        self._show()

    def action_branch(self) -> None:
        step = self.steps[self.cursor]
        if step.top[self.row].id == step.id:
            self.notify("That is the token it chose; pick another candidate with ↑/↓.", severity="warning")
            return
        self.dismiss((self.cursor, self.row))

    def action_close(self) -> None:
        self.dismiss(None)
