"""A scored text in the transcript (`/score`): each token coloured by the model's probability of it,
the loss and perplexity in the stats line, the most surprising tokens in a note. It is an exchange
whose steps are the text's own tokens, so the token cursor (f5) walks it: candidates, lens, attention."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from textual import work
from textual.message import Message

from tfchat.core.decode.step_info import Alternative, StepInfo
from tfchat.core.engine.tokenizer import token_bytes, token_text
from tfchat.core.nn.inside_data import ScoredText, ScoredToken, shown_perplexity
from tfchat.tui.transcript.exchange_view import ExchangeView
from tfchat.tui.transcript.stats_line import joined
from tfchat.tui.transcript.streaming import run_for_view
from tfchat.tui.widgets.token_view import shown_token

SURPRISES_LISTED = 5


def as_step(token: ScoredToken) -> StepInfo:
    """A scored token as the token cursor reads a generated one; no sampler drew it (shown as —)."""
    return StepInfo(token.id, token.logprob, math.nan, token.entropy,
                    tuple(Alternative(i, lp, math.nan) for i, lp in token.top))


def first_token_text(text: str, encoding) -> str:
    """The text of `text`'s first token: shown as the exchange's prompt, since nothing predicts it."""
    ids = encoding.encode(text, disallowed_special=())
    first = encoding.decode(ids[:1])
    return first if text.startswith(first) else ""


def heads_named(off) -> str:
    return ", ".join(f"L{layer}.H{head}" for layer, head in off)


def summary(scored: ScoredText, baseline: ScoredText | None, off, seconds: float, stopped: bool) -> str:
    loss = f"loss {scored.loss:.3f} nats"
    if baseline is not None:
        loss = (f"loss {baseline.loss:.3f} → {scored.loss:.3f} nats ({scored.loss - baseline.loss:+.3f}) "
                f"with {heads_named(off)} off")
    return joined(loss, f"perplexity {shown_perplexity(scored.perplexity)}", f"{len(scored.tokens)} tokens scored",
                  f"{seconds:.1f} s", "stopped" if stopped else "scored")


def percent(logprob: float) -> str:
    shown = math.exp(logprob) * 100
    return "<0.01%" if shown < 0.01 else f"{shown:.2g}%"


def surprises(scored: ScoredText, encoding) -> str:
    """The least likely tokens, each with its probability and its place in the text (the first is 1)."""
    worst = sorted(enumerate(scored.tokens, start=2), key=lambda item: item[1].logprob)[:SURPRISES_LISTED]
    return "most surprising: " + " · ".join(
        f"{shown_token(token_text(encoding, t.id)[0])} {percent(t.logprob)} (token {n})" for n, t in worst)


class ScoreView(ExchangeView):
    @dataclass
    class Done(Message):
        number: int  # the scored text's view
        scored: ScoredText | None
        baseline: ScoredText | None  # all heads on, when some were switched off
        seconds: float
        error: str | None = None

    def __init__(self, text: str, source: str, encoding):
        first = first_token_text(text, encoding)
        super().__init__(first, "score")
        self.text, self.source = text, source
        self.encoding = encoding  # the scored model's tokenizer, for the surprises and the colours
        self.base_context = first  # the token cursor's lens and attention start from the first token

    def score(self, engine, off: tuple, cancel: threading.Event, finished: threading.Event) -> None:
        self.finish(f"scoring {len(self.text):,} characters from {self.source}… (esc stops)")
        self._score(engine, off, cancel, finished)

    @work(thread=True, exit_on_error=False, group="generation", description="scoring")
    def _score(self, engine, off: tuple, cancel: threading.Event, finished: threading.Event) -> None:
        started = time.perf_counter()

        def score() -> ScoreView.Done:
            baseline = engine.score(self.text, (), cancel) if off else None
            scored = engine.score(self.text, off, cancel)
            return self.Done(self.number, scored, baseline, time.perf_counter() - started)

        run_for_view(self, finished, score, lambda error: self.Done(self.number, None, None, 0.0, error), "scoring")

    def show_scored(self, message: Done, off: tuple, stopped: bool) -> None:
        if message.error or message.scored is None:
            self.finish(message.error or "scoring failed", "failed", reason="failed")
            return
        scored = message.scored
        branch = self.branch
        branch.steps = [as_step(t) for t in scored.tokens]
        branch.segments = [(0, 0)]
        branch.tokens = len(scored.tokens) + 1
        self.append(self.text[len(self.prompt):])
        self.finish(summary(scored, message.baseline, off, message.seconds, stopped), "stopped" if stopped else "",
                    reason="stopped" if stopped else "score")
        if scored.tokens:
            self.note(surprises(scored, self.encoding))
        self.show_probabilities(True, lambda token: token_bytes(self.encoding, token))  # the point of a score: coloured by the model's surprise
