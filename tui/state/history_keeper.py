"""Keeping the history for the app: each exchange written once, and a failing database never stops
the session: what fails becomes a problem, shown once as a notice. Plain, no widgets."""
from __future__ import annotations

from tfchat.core.errors import HistoryError
from tfchat.core.store.history import Exchange, History, NoHistory
from tfchat.tui.state.requests import CompareRequest


class HistoryKeeper:
    def __init__(self, history: History | NoHistory):
        self.history = history
        self.problems: list[str] = [f"History is off: {history.problem}"] if isinstance(history, NoHistory) else []
        self._shown = 0
        # The conversation the session's exchanges go to: begun by the first one written, after the
        # start or a /clear; a reopened one goes on.
        self.conversation: int | None = None

    def begin_new_conversation(self) -> None:
        self.conversation = None

    def go_on_with(self, conversation: int) -> None:
        self.conversation = conversation

    def _conversation_for(self, model: str) -> int | None:
        if self.conversation is None:
            self.conversation = self.history.new_conversation(model)
        return self.conversation

    def read(self, call, default):
        """A history call that must never stop the app: a failure becomes a problem to show."""
        try:
            return call()
        except HistoryError as exc:
            problem = f"History failed, the app goes on: {exc}"
            if problem not in self.problems:
                self.problems.append(problem)
            return default

    def write(self, *, kind: str, prompt: str, output: str, preset: str, params: dict, stats: dict,
              reason: str, model: str) -> None:
        self.read(lambda: self.history.add(Exchange(prompt=prompt, output=output, preset=preset, params=params,
                                                    stats=stats, model=model, finish_reason=reason, kind=kind,
                                                    conversation=self._conversation_for(model))), None)

    def record_exchange(self, request, output: str, stats: dict, reason: str, model: str) -> None:
        """One exchange (a tui.state.requests request) and how it ended; `ended_by` (a quit, a hangup) says why first."""
        self.write(kind=request.kind, prompt=request.recorded_prompt(), output=output, preset=request.preset,
                   params=request.params.as_dict(), stats=stats, reason=request.ended_by or reason, model=model)

    def record_compare(self, request, batch, reason: str, model: str) -> None:
        """Every column of a comparison, each with its preset; `batch` holds the columns' texts and stats."""
        for i, (name, params) in enumerate(zip(request.presets, request.column_params)):
            stats = batch.stats[i]
            self.write(kind=request.kind, prompt=request.prompt, output=batch.texts[i], preset=name,
                       params=params.as_dict(), stats=stats.as_dict() if stats else {"new_tokens": None},
                       reason=request.ended_by or (stats.finish_reason if stats else reason),
                       model=request.models[i] if request.models else model)

    def record_unfinished(self, request, generation, reason: str, model: str) -> None:
        """A request cut short (a quit, a hangup): what its generation, or a comparison's batch, holds now."""
        if isinstance(request, CompareRequest):
            if generation is not None:
                self.record_compare(request, generation, reason, model)
            return
        output = generation.text if generation is not None else ""
        stats = generation.stats.as_dict() if generation is not None and generation.stats else {"new_tokens": None}
        self.record_exchange(request, output, stats, reason, model)

    def unshown_problems(self) -> list[str]:
        """Problems not shown yet; each is returned once."""
        fresh = self.problems[self._shown:]
        self._shown = len(self.problems)
        return fresh
