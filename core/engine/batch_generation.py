"""Several generations as text, decoded in one batch (`core.decode.batching`): the engine's compare.

Each row streams its own text through its own `TextStream` (its stop strings, its seed, its
clock) and ends with its own statistics; iterating yields `RowEvent`s in the order tokens come.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from tfchat.core.decode.batching import BatchRun, seeded_row
from tfchat.core.engine.text_stream import RowEvent, TextStream
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams


class BatchGeneration:
    """Iterate for `RowEvent`s; `texts`, `token_ids` and `stats` (per row) fill as it goes."""

    def __init__(self, model: FastModel, encoding, end_of_text_id: int | None, prompt_ids: list[list[int]],
                 params: list[SamplingParams], cancel: threading.Event | None, top_logprobs: int = 0):
        self._model = model
        self._encoding = encoding
        self._end_of_text_id = end_of_text_id
        self._prompt_ids = prompt_ids
        self._params = params
        self._cancel = cancel
        self._top_logprobs = top_logprobs
        self.texts = [""] * len(params)
        self.token_ids: list[list[int]] = [[] for _ in params]
        self.steps: list[list] = [[] for _ in params]
        self.stats: list = [None] * len(params)
        self.notices: list[str | None] = [None] * len(params)  # the model runs here: nothing to say

    def __iter__(self) -> Iterator[RowEvent]:
        model, start = self._model, time.perf_counter()
        streams = [TextStream(self._encoding, len(ids), params, str(model.device), start=start,
                              end_of_text_id=self._end_of_text_id, weights=model.weights)
                   for ids, params in zip(self._prompt_ids, self._params)]
        run = BatchRun(model, [seeded_row(ids, params, stream.seed, model.device, self._cancel, self._top_logprobs)
                               for ids, params, stream in zip(self._prompt_ids, self._params, streams)])
        try:
            for tokens in run:
                now = time.perf_counter()
                for token in tokens:
                    i, stream = token.row, streams[token.row]
                    self.token_ids[i].append(token.id)
                    if token.step is not None:
                        self.steps[i].append(token.step)
                    piece = stream.take(token.id, now)
                    if stream.finish:
                        run.finish(i, stream.finish)
                    if run.ended(i):
                        tail, self.stats[i] = stream.end(run.rows[i].finish_reason)
                        self.texts[i] += piece + tail
                        yield RowEvent(i, piece + tail, self.stats[i])
                    elif piece:
                        self.texts[i] += piece
                        yield RowEvent(i, piece)
            # Rows that ended between steps (a cancel seen only when the next step dropped them) have
            # had no event with their stats: every row's last event carries them, whenever it ended.
            for i, stream in enumerate(streams):
                if self.stats[i] is None:
                    tail, self.stats[i] = stream.end(run.rows[i].finish_reason)
                    self.texts[i] += tail
                    yield RowEvent(i, tail, self.stats[i])
        finally:  # rows cut short (Ctrl+C, an error, a caller that stops iterating) still get their stats
            for i, stream in enumerate(streams):
                if self.stats[i] is None:
                    self.stats[i] = stream.end(run.rows[i].finish_reason)[1]
