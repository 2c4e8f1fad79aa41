"""Keeping the history: each exchange written once, failures shown as notices, the browser's resend.

A mixin of the app. The database never stops the app: what fails becomes a
notice in the transcript, once per distinct problem.
"""
from __future__ import annotations

from core.errors import HistoryError
from core.store.history import Exchange
from tui.history_screen import HistoryScreen
from tui.prompt_input import PromptInput
from tui.session import PromptRequest, Request
from tui.transcript import Transcript


class HistoryKeepingMixin:
    def _record(self, request: Request, output: str, stats: dict, reason: str) -> None:
        """Write the exchange to the history, once, from whichever thread ends it."""
        if self.session.claim_record(request):
            self._write_exchange(request, output, request.preset, request.params.as_dict(), stats, reason)

    def _write_exchange(self, request: Request, output: str, preset: str, params: dict, stats: dict,
                        reason: str) -> None:
        self._from_history(lambda: self.history.add(Exchange(
            prompt=request.prompt, output=output, preset=preset, params=params, stats=stats, model=self.model_source,
            finish_reason=request.ended_by or reason, kind=request.kind)), None)

    def _from_history(self, call, default):
        """A history read or write that must never stop the app: a failure becomes a notice."""
        try:
            return call()
        except HistoryError as exc:
            problem = f"History failed, the app goes on: {exc}"
            if problem not in self.history_problems:
                self.history_problems.append(problem)
            return default

    def _show_history_problems(self) -> None:
        for problem in self.history_problems[self._shown_problems:]:
            self.query_one(Transcript).add_notice(problem, error=True)
        self._shown_problems = len(self.history_problems)

    def action_show_history(self) -> None:
        self.push_screen(HistoryScreen(self.history), self._send_from_history)

    def _send_from_history(self, prompt: str | None) -> None:
        if prompt is not None:
            self.query_one(PromptInput).remember(prompt)
            self._enqueue(PromptRequest(prompt, self.preset, self.current_params(), self.mode))

