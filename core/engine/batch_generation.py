"""Several generations as text, decoded in one batch (`core.decode.batching`): the engine's compare.

Each row streams its own text, with its own stop strings, and ends with its
own statistics; iterating yields `RowEvent`s in the order tokens come.
`RowProgress` is one row's side of that, shared with the server's scheduler.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import torch

from core.decode.batching import BatchRun, Row
from core.settings.sampling_params import SamplingParams
from core.engine.stats import GenerationStats, RowEvent, measured_stats
from core.engine.streaming import RowText
from core.engine.tokenizer import IncrementalDecoder


class RowProgress:
    """One row as its tokens come: its text (stop strings held back), its seed and its clock."""

    def __init__(self, encoding, prompt_ids: list[int], params: SamplingParams, device, start: float):
        self.prompt_ids = prompt_ids
        self.params = params
        self.seed = params.seed if params.seed is not None else secrets.randbits(62)
        self._device = device
        self._text = RowText(IncrementalDecoder(encoding), params.stop)
        self._start = start
        self._first_at: float | None = None
        self.new_tokens = 0
        self.stopped = False  # a stop string has ended it: the batch must finish the row

    def row(self, cancel: threading.Event | None, top_logprobs: int) -> Row:
        """Its row of a `BatchRun`, drawing from its own seeded generator."""
        generator = torch.Generator(device=self._device).manual_seed(self.seed)
        return Row(self.prompt_ids, self.params, generator, cancel, top_logprobs)

    def push(self, token: int, now: float) -> str:
        """A new token: the text now safe to show."""
        self._first_at = self._first_at or now
        self.new_tokens += 1
        piece, stopped = self._text.push(token)
        self.stopped = self.stopped or stopped
        return piece

    def end(self, reason: str | None) -> tuple[str, GenerationStats]:
        """The text held back until the end, and the row's stats."""
        tail = self._text.finish(self.stopped)
        return tail, measured_stats(len(self.prompt_ids), self.new_tokens, self._start, self._first_at,
                                    time.perf_counter(), str(self._device), reason or "stopped", self.seed)


class BatchGeneration:
    """Iterate for `RowEvent`s; `texts`, `token_ids` and `stats` (per row) fill as it goes."""

    def __init__(self, engine, prompt_ids: list[list[int]], params: list, cancel: threading.Event | None,
                 top_logprobs: int = 0):
        self._engine = engine
        self._prompt_ids = prompt_ids
        self._params = params
        self._cancel = cancel
        self._top_logprobs = top_logprobs
        self.texts = [""] * len(params)
        self.token_ids: list[list[int]] = [[] for _ in params]
        self.steps: list[list] = [[] for _ in params]
        self.stats: list = [None] * len(params)

    def __iter__(self) -> Iterator[RowEvent]:
        engine, start = self._engine, time.perf_counter()
        progress = [RowProgress(engine.encoding, ids, params, engine.device, start)
                    for ids, params in zip(self._prompt_ids, self._params)]
        run = BatchRun(engine.model, [p.row(self._cancel, self._top_logprobs) for p in progress])
        try:
            for tokens in run:
                now = time.perf_counter()
                for token in tokens:
                    i, row = token.row, progress[token.row]
                    self.token_ids[i].append(token.id)
                    if token.step is not None:
                        self.steps[i].append(token.step)
                    piece = row.push(token.id, now)
                    if row.stopped:
                        run.finish(i, "stop")
                    if run.ended(i):
                        tail, self.stats[i] = row.end(run.rows[i].finish_reason)
                        self.texts[i] += piece + tail
                        yield RowEvent(i, piece + tail, self.stats[i])
                    elif piece:
                        self.texts[i] += piece
                        yield RowEvent(i, piece)
            # Rows that ended between steps (a cancel seen only when the next step dropped them) have
            # had no event with their stats: every row's last event carries them, whenever it ended.
            for i, row in enumerate(progress):
                if self.stats[i] is None:
                    tail, self.stats[i] = row.end(run.rows[i].finish_reason)
                    self.texts[i] += tail
                    yield RowEvent(i, tail, self.stats[i])
        finally:  # rows cut short (Ctrl+C, an error, a caller that stops iterating) still get their stats
            for i, row in enumerate(progress):
                if self.stats[i] is None:
                    self.stats[i] = row.end(run.rows[i].finish_reason)[1]
