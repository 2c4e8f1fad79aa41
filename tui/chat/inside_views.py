"""Seeing inside a generation, for the chat screen's keys: the probability view (f3), the token
cursor and its branches (f5, alt+arrows), the model inspector (f8)."""
from __future__ import annotations

from tfchat.core.engine.tokenizer import token_bytes, token_text
from tfchat.core.errors import TfchatError
from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.screens.token_screen import TokenScreen
from tfchat.tui.state.requests import BranchRequest
from tfchat.tui.transcript.exchange_view import ExchangeView


class InsideViews:
    """What the inside views need of the chat: its transcript, session, backend and presets."""

    def __init__(self, chat):
        self.chat = chat
        self.probabilities_shown = False
        self.last_tokens_per_s: float | None = None  # the inspector shows it
        self.startup: str | None = None  # first frame and ready after launch, as the inspector shows them

    def bytes_of(self, token: int) -> bytes:
        """A token's exact bytes, in the active model's tokenizer."""
        return token_bytes(self.chat.meter.encoding, token)

    def text_of(self, token: int) -> tuple[str, list[int]]:
        return token_text(self.chat.meter.encoding, token)

    # ----- the probability view -------------------------------------------------------
    def toggle_probabilities(self) -> None:
        self.probabilities_shown = not self.probabilities_shown
        self.chat.transcript.show_probabilities(self.probabilities_shown, self.bytes_of)
        self.chat.query_one("#legend").display = self.probabilities_shown

    def show_probabilities_in(self, view: ExchangeView) -> None:
        """A new exchange shows probabilities when the view is on."""
        view.show_probabilities(self.probabilities_shown, self.bytes_of)

    # ----- the token cursor and branches ---------------------------------------------
    def _inspectable_view(self) -> ExchangeView | None:
        """The last exchange, when it has tokens to walk and is not still generating."""
        view = self.chat.transcript.last_exchange()
        if view is None or not any(branch.steps for branch in view.branches):
            self.chat.notify("No generated tokens to inspect yet.", severity="warning")
            return None
        if view.number == self.chat.session.active_number:
            self.chat.notify("The exchange is still generating (esc stops it).", severity="warning")
            return None
        return view

    def inspect_tokens(self) -> None:
        view = self._inspectable_view()
        if view is None:
            return
        self.chat.app.push_screen(TokenScreen(view, self.text_of, self.chat.engine, self.chat.corpus.training_text),
                                  lambda chosen: self._branch_chosen(view, chosen))

    def _branch_chosen(self, view: ExchangeView, chosen: tuple[int, int] | None) -> None:
        self._branch_shown(view)  # the screen's [ and ] may have switched branches
        if chosen is None:
            return
        step_index, row = chosen
        alternative = view.branch.steps[step_index].top[row]
        chat = self.chat
        chat.enqueue(BranchRequest(view.prompt, chat.presets.name, chat.current_params(), chat.mode, exchange=view.number,
                                   parent=view.branch_index, step_index=step_index, alternative=alternative))

    def switch_branch(self, delta: int) -> None:
        view = self._inspectable_view()
        if view is None:
            return
        if len(view.branches) == 1:
            self.chat.notify("One branch so far: in the token cursor (f5), enter on another candidate makes one.")
            return
        view.show_branch((view.branch_index + delta) % len(view.branches))
        self._branch_shown(view)

    def _branch_shown(self, view: ExchangeView) -> None:
        """The branch on screen is the one continue mode goes on from."""
        log = self.chat.session.context_log
        if self.chat.transcript.last_exchange() is view and log:
            log[-1] = (log[-1][0], view.output)
            self.chat.update_context_meter()

    # ----- the model inspector ---------------------------------------------------------
    def inspect_model(self) -> None:
        engine = self.chat.engine
        if engine is None:
            self.chat.notify("The model is not loaded yet.", severity="warning")
            return
        try:
            card = engine.describe()
        except TfchatError as exc:
            self.chat.notify(str(exc), severity="error")
            return
        if self.startup:
            card = {**card, "startup": self.startup}
        self.chat.app.push_screen(InspectorScreen(card, self.last_tokens_per_s))
