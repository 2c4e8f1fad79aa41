"""The output pane: exchanges, comparisons and notices, one after another, following the stream."""
from __future__ import annotations

from rich.console import Console, RenderableType
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tfchat.core.errors import PromptError
from tfchat.tui.state.branches import branch_from
from tfchat.tui.state.requests import BranchRequest, CompareRequest, ContinueRequest, Request, ScoreRequest
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.transcript.exchange_view import ExchangeView
from tfchat.tui.transcript.saved_transcript import transcript_markdown
from tfchat.tui.transcript.score_view import ScoreView


class Notice(Static):
    DEFAULT_CSS = """
    Notice { margin: 0 0 1 0; color: $text-muted; }
    Notice.error { color: $error; }
    """

    def __init__(self, content: RenderableType, **kwargs):
        super().__init__(content, **kwargs)
        self._content = content

    @property
    def plain(self) -> str:
        """The notice as plain text (a table's rows one line each)."""
        return self._content.plain if isinstance(self._content, Text) else self.laid_out(200)

    def say(self, content: RenderableType, error: bool = False) -> None:
        """Say something else in the same place (a wait for a server that counts its tries)."""
        self._content = Text(content) if isinstance(content, str) else content
        self.set_class(error, "error")
        self.update(self._content)

    def laid_out(self, width: int) -> str:
        """The notice as plain text `width` cells wide, wrapped as it is shown."""
        console = Console(width=width, color_system=None, legacy_windows=False)
        with console.capture() as captured:
            console.print(self._content)
        return captured.get()


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

    def view_for(self, request: Request, prior: str, continuation: str,
                 encoding=None) -> tuple[ExchangeView | CompareView, str, tuple[int, ...]]:
        """Where `request` streams, what the model is given, and the token ids forced before it samples.

        A new exchange (or comparison) after the rest, given `prior` (the transcript, in continue
        mode) and its prompt; a branch in its exchange, from the branch's start; a continuation
        in the last exchange, given `continuation`. A scored text is tokenized with `encoding`.
        Raises PromptError when the exchange a branch starts from was cleared."""
        if isinstance(request, CompareRequest):
            comparison = CompareView(request.prompt, request.presets, request.blind, labels=request.models)
            comparison.model_slots = list(request.model_slots)
            self.mount(comparison)
            comparison.context = prior + request.prompt
            return comparison, comparison.context, ()
        if isinstance(request, ScoreRequest):
            view = ScoreView(request.prompt, request.source, encoding)
            self.mount(view)
            return view, "", ()
        last = self.last_generated()
        if isinstance(request, BranchRequest):
            view, step = self.view_numbered(request.exchange), request.step_index
            if not isinstance(view, ExchangeView):
                raise PromptError("the exchange to branch from was cleared; nothing to branch")
            view.add_branch(branch_from(view.branches[request.parent], request.parent, step, request.alternative,
                                        request.params.as_dict()))
            return view, view.base_context or "", tuple(view.branch.token_ids(step + 1))
        if isinstance(request, ContinueRequest) and last is not None:
            last.branch.begin_generation()
            return last, continuation, ()
        view = self.add_exchange(request.prompt, request.preset)
        view.base_context = prior + request.prompt
        view.branch.begin_generation()
        return view, view.base_context, ()

    def add_notice(self, text: str | RenderableType, error: bool = False, id: str | None = None) -> Notice:
        notice = Notice(Text(text) if isinstance(text, str) else text, classes="error" if error else "", id=id)
        self.mount(notice)
        self.scroll_end(animate=False)
        return notice

    def clear(self, keep: int | None = None) -> None:
        """Remove everything but the view numbered `keep` (the one still generating, which must stay visible)."""
        for child in list(self.children):
            if keep is None or getattr(child, "number", None) != keep:
                child.remove()

    def exchanges(self) -> list[ExchangeView]:
        return list(self.query(ExchangeView))

    def last_generated(self) -> ExchangeView | None:
        """The last exchange a generation wrote (not a scored text): what ctrl+g continues."""
        views = [view for view in self.exchanges() if not isinstance(view, ScoreView)]
        return views[-1] if views else None

    def view_numbered(self, number: int | None) -> ExchangeView | CompareView | None:
        """The exchange, comparison or scored text numbered `number`; None once cleared."""
        return next((child for child in self.children if getattr(child, "number", None) == number), None)

    def last_exchange(self) -> ExchangeView | None:
        views = self.exchanges()
        return views[-1] if views else None

    def show_probabilities(self, shown: bool, token_bytes) -> None:
        for view in self.exchanges():
            view.show_probabilities(shown, token_bytes)

    def forget_old_steps(self, keep: int) -> None:
        """Exchanges before the last `keep` keep their text and lose their per-token records:
        a long session's memory stays bounded."""
        for view in self.exchanges()[:-keep]:
            view.forget_steps()

    def saved_views(self) -> list[ExchangeView | CompareView]:
        """What /save writes: the exchanges, comparisons and scored texts, in order."""
        return [child for child in self.children if isinstance(child, (ExchangeView, CompareView))]

    def as_markdown(self, model_path) -> str:
        """Every generation with what produced it: preset, parameters, seed, stats, how it ended."""
        return transcript_markdown(self.saved_views(), model_path)
