"""Continuous batching: requests join the running batch between steps and leave when done.

One thread owns the model and runs `BatchRun` steps for as long as any request
is going. A request (`submit`) waits in a bounded queue until the batch has room,
joins at the next step, and reports each step's news through its callback, from
this thread: a `RowEvent` with the new text and token information, the last one
with the stats. Setting its cancel event ends it within a step.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tfchat.core.decode.batching import BatchRun, seeded_row
from tfchat.core.decode.generation import require_prompt
from tfchat.core.decode.limits import MAX_SERVE_ROWS
from tfchat.core.engine.text_stream import RowEvent, TextStream
from tfchat.core.errors import TfchatError, describe_exception
from tfchat.core.settings.sampling_params import SamplingParams


class QueueFull(TfchatError):
    """More requests are waiting than the queue holds."""


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    stream: TextStream  # its text and clock, from the moment it was submitted
    top_logprobs: int
    report: Callable[[RowEvent], None]
    cancel: threading.Event


class BatchScheduler:
    def __init__(self, engine, max_rows: int = MAX_SERVE_ROWS, max_queue: int = 64):
        self._engine = engine
        self._max_rows = max_rows
        self._max_queue = max_queue
        self._waiting: deque[_Request] = deque()
        self._running: dict[int, _Request] = {}  # BatchRun row index -> request
        self._run = BatchRun(engine.model, max_rows=max_rows)
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="tfchat-scheduler", daemon=True)
        self._thread.start()

    def submit(self, prompt_ids: list[int], params: SamplingParams, report: Callable[[RowEvent], None],
               top_logprobs: int = 0, cancel: threading.Event | None = None) -> threading.Event:
        """Queue a generation; returns the event that cancels it. Raises QueueFull."""
        require_prompt(prompt_ids)
        cancel = cancel or threading.Event()
        stream = TextStream(self._engine.encoding, len(prompt_ids), params, str(self._engine.device),
                            end_of_text_id=self._engine.end_of_text_id, weights=self._engine.model.weights)
        request = _Request(prompt_ids, params, stream, top_logprobs, report, cancel)
        with self._wake:
            # Rows still free count as room: a request that arrives before this thread has admitted the
            # ones just before it (it may be mid-step) is not refused while the batch has space.
            free_rows = max(0, self._max_rows - len(self._running))
            if len(self._waiting) >= self._max_queue + free_rows:
                raise QueueFull(f"the server is busy: {len(self._waiting)} requests are waiting already")
            self._waiting.append(request)
            self._wake.notify()
        return cancel

    def occupancy(self) -> dict:
        """Rows generating now, and requests waiting for room."""
        with self._wake:
            return {"running": len(self._running), "waiting": len(self._waiting), "max_rows": self._max_rows,
                    "max_queue": self._max_queue}

    def cancel_all(self) -> None:
        """End every request now, running or waiting: each ends at the next step with what it has."""
        with self._wake:
            for request in [*self._running.values(), *self._waiting]:
                request.cancel.set()
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    # ----- the model's thread ---------------------------------------------------------------
    def _serve(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._running:
                    self._wake.wait()
                if self._closed:
                    return
                self._admit()
            try:
                tokens = self._run.step()
            except Exception as exc:  # noqa: BLE001 - every running request hears of it, the server goes on
                message = str(exc) if isinstance(exc, TfchatError) else f"generation failed: {describe_exception(exc)}"
                for request in self._running.values():
                    request.report(RowEvent(-1, "", error=message))
                self._running.clear()
                self._run = BatchRun(self._engine.model, max_rows=self._max_rows)
                continue
            self._report(tokens)

    def _admit(self) -> None:
        """Waiting requests join while the batch has room (a cancelled one is dropped here)."""
        if not self._running:
            self._run = BatchRun(self._engine.model, max_rows=self._max_rows)  # a fresh one: no old rows kept
        while self._waiting and self._run.room() > 0:
            request = self._waiting.popleft()
            if request.cancel.is_set():
                continue
            index = self._run.add(seeded_row(request.prompt_ids, request.params, request.stream.seed,
                                             self._engine.device, request.cancel, request.top_logprobs))
            self._running[index] = request

    def _report(self, tokens) -> None:
        now = time.perf_counter()
        news: dict[int, RowEvent] = {}
        for token in tokens:
            stream = self._running[token.row].stream
            piece = stream.take(token.id, now)
            if stream.finish:
                self._run.finish(token.row, stream.finish)
            update = news.setdefault(token.row, RowEvent(token.row, ""))
            update.piece += piece
            update.token_ids.append(token.id)
            if token.step is not None:
                update.steps.append(token.step)
        for index, request in list(self._running.items()):
            update = news.get(index)
            if self._run.ended(index):  # its length, a stop string, or cancelled
                update = update or RowEvent(index, "")
                tail, update.stats = request.stream.end(self._run.rows[index].finish_reason)
                update.piece += tail
                del self._running[index]
                self._run.release(index)
            if update is not None:
                request.report(update)
