"""Seeing inside a generation, as the app's actions: the probability view, the token cursor and its
branches, the model inspector. A mixin of the app.
"""
from __future__ import annotations

from core.errors import TfchatError
from core.engine.tokenizer import load_encoding, token_bytes, token_text
from tui.inspector_screen import InspectorScreen
from tui.session import BranchRequest
from tui.token_screen import TokenScreen
from tui.transcript import ExchangeView, Transcript

# Alternatives recorded for every generated token: what the token cursor's panel shows.
TOP_LOGPROBS = 10
# A token's record takes about 1.5 KB: older exchanges keep their text and lose it, so a long
# session's memory stays bounded.
TRACED_EXCHANGES = 100


class InsightMixin:
    probabilities_shown = False
    last_tokens_per_s: float | None = None

    def token_bytes(self, token: int) -> bytes:
        return token_bytes(load_encoding(), token)

    def token_text(self, token: int) -> tuple[str, list[int]]:
        return token_text(load_encoding(), token)

    # ----- the probability view -------------------------------------------------------
    def action_toggle_probabilities(self) -> None:
        self.probabilities_shown = not self.probabilities_shown
        for view in self.query_one(Transcript).exchanges():
            view.show_probabilities(self.probabilities_shown, self.token_bytes)
        self.query_one("#legend").display = self.probabilities_shown

    def _forget_old_traces(self) -> None:
        for view in self.query_one(Transcript).exchanges()[:-TRACED_EXCHANGES]:
            if any(branch.steps for branch in view.branches):
                for branch in view.branches:
                    branch.steps, branch.segments = [], []
                view.show_probabilities(False, None)

    # ----- the token cursor and branches ---------------------------------------------
    def _inspectable_view(self) -> ExchangeView | None:
        """The last exchange, when it has tokens to walk and is not still generating."""
        views = self.query_one(Transcript).exchanges()
        view = views[-1] if views else None
        if view is None or not any(branch.steps for branch in view.branches):
            self.notify("No generated tokens to inspect yet.", severity="warning")
            return None
        if view is self.session.active_view:
            self.notify("The exchange is still generating (esc stops it).", severity="warning")
            return None
        return view

    def action_inspect_tokens(self) -> None:
        view = self._inspectable_view()
        if view is None:
            return
        lens = self.engine.logit_lens if self.engine is not None else None
        self.push_screen(TokenScreen(view, self.token_text, lens), lambda chosen: self._branch_chosen(view, chosen))

    def _branch_chosen(self, view: ExchangeView, chosen: tuple[int, int] | None) -> None:
        self._branch_shown(view)  # the screen's [ and ] may have switched branches
        if chosen is None:
            return
        step_index, row = chosen
        alternative = view.branch.steps[step_index].top[row]
        request = BranchRequest(view.prompt, self.preset, self.current_params(), self.mode, view=view,
                                parent=view.branch_index, step_index=step_index, alternative=alternative)
        self._enqueue(request)

    def action_switch_branch(self, delta: int) -> None:
        view = self._inspectable_view()
        if view is None:
            return
        if len(view.branches) == 1:
            self.notify("One branch so far: in the token cursor (f5), enter on another candidate makes one.")
            return
        view.show_branch((view.branch_index + delta) % len(view.branches))
        self._branch_shown(view)

    def _branch_shown(self, view: ExchangeView) -> None:
        """The branch on screen is the one continue mode goes on from."""
        views = self.query_one(Transcript).exchanges()
        if views and views[-1] is view and self.session.context_log:
            self.session.context_log[-1] = (self.session.context_log[-1][0], view.output)
            self._update_context_meter()

    # ----- the model inspector ---------------------------------------------------------
    def action_inspect_model(self) -> None:
        if self.engine is None:
            self.notify("The model is not loaded yet.", severity="warning")
            return
        try:
            card = self.engine.describe()
        except TfchatError as exc:
            self.notify(str(exc), severity="error")
            return
        self.push_screen(InspectorScreen(card, self.last_tokens_per_s))
