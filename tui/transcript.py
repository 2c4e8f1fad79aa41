"""The output pane: each exchange's prompt, its streaming continuation, then its stats."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tui.branches import Branch
from tui.token_view import styled_tokens

_MEASURE = Console(width=80, legacy_windows=False, force_terminal=False)


class StreamingText(Vertical):
    """A styled prefix (the prompt) and text that grows at its end, as one flowing text.

    A layout pass costs the whole screen, so finished lines (up to the last
    newline) live in one widget updated per newline, and the line being written
    in another whose layout is redone only when its wrapped height changes.
    """

    DEFAULT_CSS = """
    StreamingText { height: auto; }
    StreamingText > Static { height: auto; }
    """

    def __init__(self, prefix: str = "", prefix_style: str = "bold", **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix
        self.prefix_style = prefix_style
        self.text = ""  # what was streamed, without the prefix
        self._done = Static(Text(""))
        self._live = Static(Text(""))
        self._live_rows = 0
        self._done.display = False
        self._override: Text | None = None  # a styled view of the whole text, shown instead while set

    def compose(self):
        yield self._done
        yield self._live

    def on_mount(self) -> None:
        self._show(relayout_done=True)

    def append(self, piece: str) -> None:
        self.text += piece
        self._show(relayout_done="\n" in piece)

    def set_text(self, text: str) -> None:
        self.text = text
        self._show(relayout_done=True)

    @property
    def shown(self) -> str:
        """The plain text on screen now: the prompt prefix and the output, as one text."""
        return str(self._done.render()) + str(self._live.render())

    @property
    def styled(self) -> Text | None:
        """The styled view shown instead of the plain text (the probability view), else None."""
        return self._override

    def show_styled(self, output: Text | None) -> None:
        """Show the prefix and `output` (the text, styled) instead of the plain text; None goes back."""
        self._override = None if output is None else Text(self.prefix, style=self.prefix_style) + output
        self._show(relayout_done=True)

    def _show(self, relayout_done: bool) -> None:
        if self._override is not None:
            self._done.display, self._live.display = True, False
            self._done.update(self._override)
            return
        self._live.display = True
        full = self.prefix + self.text
        cut = full.rfind("\n") + 1
        if relayout_done:
            self._done.display = cut > 0
            self._done.update(self._styled(full, 0, max(cut - 1, 0)))  # layout: its height changed
        live = full[cut:]
        rows = self._rows(live)
        self._live.update(self._styled(full, cut, len(full)), layout=rows != self._live_rows)
        self._live_rows = rows

    def _styled(self, full: str, start: int, end: int) -> Text:
        """full[start:end], with the part that belongs to the prefix in the prefix's style."""
        text = Text(full[start:end])
        prefix_end = min(len(self.prefix), end) - start
        if prefix_end > 0:
            text.stylize(self.prefix_style, 0, prefix_end)
        return text

    def _rows(self, line: str) -> int:
        width = self._live.content_region.width or self.size.width
        if width <= 0 or not line:
            return 1
        return len(Text(line).wrap(_MEASURE, width))


class ExchangeView(Vertical):
    """One exchange: the prompt and its continuation as one text, a note when the window cropped it, stats."""

    DEFAULT_CSS = """
    ExchangeView { height: auto; margin: 0 0 1 0; }
    ExchangeView .output { color: $text; }
    ExchangeView .note { color: $warning; }
    ExchangeView .stats { color: $text-muted; }
    ExchangeView .stats.stopped { color: $warning; }
    ExchangeView .stats.failed { color: $error; }
    """

    def __init__(self, prompt: str, preset: str):
        super().__init__()
        self.prompt = prompt
        self.preset = preset
        self.base_context: str | None = None  # what the model was given before the first output: branches start there
        self.branches: list[Branch] = [Branch()]
        self.branch_index = 0
        self.generation_start = 0  # where the latest generation's text begins in `output`
        self.probabilities_shown = False
        self.token_bytes = None  # id -> bytes, set by whoever shows probabilities
        self._note = Static(Text(""), classes="note")
        self._note.display = False
        self._output = StreamingText(prefix=prompt, classes="output")
        self._stats = Static(Text("…"), classes="stats")

    def compose(self):
        yield self._note
        yield self._output
        yield self._stats

    def on_mount(self) -> None:
        accent = self.app.theme_variables.get("text-accent") or "cyan"
        self._output.prefix_style = f"bold {accent}"

    @property
    def branch(self) -> Branch:
        return self.branches[self.branch_index]

    @property
    def output(self) -> str:
        return self._output.text

    @property
    def shown_text(self) -> str:
        """The prompt and its continuation as the pane shows them."""
        return self._output.shown

    @property
    def styled_text(self) -> Text | None:
        """The probability view's coloured text while it is on, else None."""
        return self._output.styled

    @property
    def summary_shown(self) -> str:
        """The stats line under the exchange, as shown (with the branch count when there are several)."""
        return str(self._stats.render())

    @property
    def params(self) -> dict:  # of the latest generation, for /save
        return self.branch.params

    @property
    def stats(self) -> dict:
        return self.branch.stats

    @property
    def finish_reason(self) -> str:
        return self.branch.finish_reason

    def mark_generation_start(self, params: dict) -> None:
        self.generation_start = len(self.output)
        self.branch.params = params
        self._stats.update(Text("…"))
        self._stats.remove_class("stopped", "failed")

    def new_output(self) -> str:
        return self.output[self.generation_start :]

    def note(self, text: str) -> None:
        self._note.update(Text(text))
        self._note.display = True

    def append(self, text: str) -> None:
        self._output.append(text)
        self.branch.output = self._output.text

    def take(self, chunks: list[str]) -> None:
        """Streamed pieces, in the order they came."""
        self.append("".join(chunks))

    def finish(self, line: str, state: str = "", stats: dict | None = None, reason: str = "") -> None:
        branch = self.branch
        branch.summary, branch.stats, branch.finish_reason = line, stats or {}, reason or state
        self._show_summary(state)
        self._refresh_probabilities()

    def _show_summary(self, state: str = "") -> None:
        branch = self.branch
        count = f"branch {self.branch_index + 1}/{len(self.branches)} · " if len(self.branches) > 1 else ""
        self._stats.update(Text(count + branch.summary))
        self._stats.remove_class("stopped", "failed")
        state = state or ("stopped" if branch.finish_reason == "stopped" else
                          "failed" if branch.finish_reason == "failed" else "")
        if state:
            self._stats.add_class(state)

    # ----- branches ---------------------------------------------------------------
    def add_branch(self, branch: Branch) -> None:
        """Make `branch` (its text still to come) the one shown."""
        self.branches.append(branch)
        self.show_branch(len(self.branches) - 1)
        self.generation_start = 0

    def show_branch(self, index: int) -> None:
        self.branch_index = index
        self._output.set_text(self.branch.output)
        self._show_summary()
        self._refresh_probabilities()

    # ----- the probability view -----------------------------------------------------
    def show_probabilities(self, shown: bool, token_bytes) -> None:
        self.probabilities_shown, self.token_bytes = shown, token_bytes
        self._refresh_probabilities()

    def _refresh_probabilities(self) -> None:
        branch = self.branch
        if not self.probabilities_shown or not branch.steps or self.token_bytes is None:
            self._output.show_styled(None)
            return
        self._output.show_styled(styled_tokens(self.output, branch.steps, branch.spans(self.token_bytes)))


class Notice(Static):
    DEFAULT_CSS = """
    Notice { margin: 0 0 1 0; color: $text-muted; }
    Notice.error { color: $error; }
    """


class Transcript(VerticalScroll):
    DEFAULT_CSS = """
    Transcript { height: 1fr; padding: 0 1; }
    """

    def on_mount(self) -> None:
        # Anchored: stays at the bottom as text streams in, until the user scrolls
        # up; scrolling back to the bottom (or sending a prompt) follows again.
        self.anchor()

    def add_exchange(self, prompt: str, preset: str) -> ExchangeView:
        view = ExchangeView(prompt, preset)
        self.mount(view)
        return view

    def add_notice(self, text: str, error: bool = False, id: str | None = None) -> Notice:
        notice = Notice(Text(text), classes="error" if error else "", id=id)
        self.mount(notice)
        self.scroll_end(animate=False)
        return notice

    def clear(self, keep: ExchangeView | None = None) -> None:
        """Remove everything but `keep` (the exchange still generating, which must stay visible)."""
        for child in list(self.children):
            if child is not keep:
                child.remove()

    def exchanges(self) -> list[ExchangeView]:
        return list(self.query(ExchangeView))

    def as_markdown(self, model_path) -> str:
        """Every exchange with what produced it: preset, parameters, seed, stats, how it ended."""
        parts = [f"# tfchat transcript\n\nModel: `{model_path}`\n"]
        shown = [child for child in self.children if isinstance(child, ExchangeView) or hasattr(child, "markdown")]
        for number, view in enumerate(shown, start=1):
            if not isinstance(view, ExchangeView):
                parts.append(view.markdown(number))  # a comparison (tui.compare_view)
                continue
            stats = view.stats
            params = ", ".join(f"{k} {v}" for k, v in view.params.items() if k != "seed" and v not in (None, []))
            lines = [f"## {number}. {view.preset} · {view.finish_reason or 'running'}", "",
                     f"- parameters: {params}" if params else "- parameters: (none recorded)",
                     f"- seed: {stats.get('seed', view.params.get('seed'))}"]
            if stats:
                lines.append(f"- stats: {stats.get('new_tokens')} new tokens from {stats.get('prompt_tokens')} "
                             f"prompt tokens, {stats.get('tokens_per_s', 0):.1f} tok/s, "
                             f"time to first token {stats.get('ttft_s', 0) * 1000:.0f} ms")
            lines.append(f"- stopped by the user: {'yes' if view.finish_reason == 'stopped' else 'no'}")
            parts.append("\n".join(lines) + f"\n\n### Prompt\n\n```text\n{view.prompt}\n```\n\n"
                         f"### Output\n\n```text\n{view.output}\n```\n")
        return "\n".join(parts)
