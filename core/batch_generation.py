"""Several generations as text, decoded in one batch (`core.batching`): the engine's compare.

Each row streams its own text, with its own stop strings, and ends with its
own statistics; iterating yields `RowEvent`s in the order tokens come.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import torch

from core.batching import BatchRun, Row
from core.stats import GenerationStats, RowEvent, measured_stats
from core.streaming import RowText
from core.tokenizer import IncrementalDecoder


class BatchGeneration:
    """Iterate for `RowEvent`s; `texts`, `token_ids` and `stats` (per row) fill as it goes."""

    def __init__(self, engine, prompt_ids: list[list[int]], params: list, cancel: threading.Event | None,
                 top_logprobs: int = 0):
        self._engine = engine
        self._prompt_ids = prompt_ids
        self._params = params
        self._cancel = cancel
        self._top_logprobs = top_logprobs
        self.seeds = [p.seed if p.seed is not None else secrets.randbits(62) for p in params]
        self.texts = [""] * len(params)
        self.token_ids: list[list[int]] = [[] for _ in params]
        self.steps: list[list] = [[] for _ in params]
        self.stats: list = [None] * len(params)

    def __iter__(self) -> Iterator[RowEvent]:
        engine = self._engine
        start = time.perf_counter()
        rows = [Row(ids, params, torch.Generator(device=engine.device).manual_seed(seed), self._cancel,
                    self._top_logprobs)
                for ids, params, seed in zip(self._prompt_ids, self._params, self.seeds)]
        texts = [RowText(IncrementalDecoder(engine.encoding), p.stop) for p in self._params]
        first_at: list[float | None] = [None] * len(rows)
        run = BatchRun(engine.model, rows)
        try:
            for tokens in run:
                now = time.perf_counter()
                for token in tokens:
                    i = token.row
                    first_at[i] = first_at[i] or now
                    self.token_ids[i].append(token.id)
                    if token.step is not None:
                        self.steps[i].append(token.step)
                    piece, stopped = texts[i].push(token.id)
                    if stopped:
                        run.finish(i, "stop")
                    if run.ended(i):
                        piece += texts[i].finish(stopped)
                        self.texts[i] += piece
                        self.stats[i] = self._row_stats(i, rows[i], start, first_at[i], time.perf_counter())
                        yield RowEvent(i, piece, self.stats[i])
                    elif piece:
                        self.texts[i] += piece
                        yield RowEvent(i, piece)
        finally:  # rows cut short (Ctrl+C, an error, a caller that stops iterating) still get their stats
            end = time.perf_counter()
            for i, row in enumerate(rows):
                if self.stats[i] is None:
                    row.finish_reason = row.finish_reason or "stopped"
                    self.stats[i] = self._row_stats(i, row, start, first_at[i], end)

    def _row_stats(self, index: int, row: Row, start: float, first_at: float | None, end: float) -> GenerationStats:
        return measured_stats(len(self._prompt_ids[index]), len(self.token_ids[index]), start, first_at, end,
                              str(self._engine.device), row.finish_reason or "stopped", self.seeds[index])
