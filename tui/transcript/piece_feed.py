"""Streamed text from a generating thread to its widget, handed over once a frame.

Each frame costs the UI several milliseconds, so pieces are queued by the thread
(never waiting for the UI) and the widget takes what has come, 20 times a second.
"""
from __future__ import annotations

import queue
from collections.abc import Callable

from textual.widget import Widget

DRAIN_INTERVAL_S = 1 / 20


class PieceFeed:
    def __init__(self, take: Callable[[list], None]):
        self._take = take  # called on the UI thread with the pieces, in the order they came
        self._pieces: queue.SimpleQueue = queue.SimpleQueue()
        self._timer = None

    def start(self, widget: Widget) -> None:
        self._timer = widget.set_interval(DRAIN_INTERVAL_S, self.drain)

    def put(self, piece) -> None:
        """From any thread."""
        self._pieces.put(piece)

    def drain(self) -> None:
        chunks = []
        while True:
            try:
                chunks.append(self._pieces.get_nowait())
            except queue.Empty:
                break
        if chunks:
            self._take(chunks)

    def stop(self) -> None:
        """The last pieces, then no more frames."""
        self.drain()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
