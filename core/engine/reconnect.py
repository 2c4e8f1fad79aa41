"""Connecting to a server that may not be up yet: try, wait, try again, for as long as the user waits.

A server that is down when the app starts (still loading its model, restarting, a tunnel not
up yet) is a matter of time, so the app keeps trying with growing pauses instead of failing
for good; any other failure (a wrong key, an answer that is not OpenAI's) would fail the same
way again, so it is final. The user can cut a pause short (ctrl+r) or leave (quit).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from tfchat.core.engine.http_wire import UnreachableError

# Seconds between tries: quick at first (a server just starting), then every half minute.
RETRY_DELAYS_S = (1, 2, 4, 8, 15, 30)

T = TypeVar("T")


def retry_delays() -> Iterator[float]:
    yield from RETRY_DELAYS_S
    while True:
        yield RETRY_DELAYS_S[-1]


class Reconnect:
    """Calls `connect` until it answers; `retry_now` cuts a pause short, `stop` ends the tries."""

    def __init__(self, delays: Callable[[], Iterator[float]] = retry_delays):
        self._delays = delays
        self._wake = threading.Event()
        self._stopped = threading.Event()

    def retry_now(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self, connect: Callable[[], T], on_wait: Callable[[str, float, int], None]) -> T | None:
        """`connect()`'s answer, or None once stopped. Between tries, `on_wait(reason, delay_s, tries)`.

        Errors other than UnreachableError go to the caller at once."""
        delays = self._delays()
        tries = 0
        while not self.stopped:
            tries += 1
            try:
                return connect()
            except UnreachableError as exc:
                if self.stopped:
                    return None
                delay = next(delays)
                on_wait(str(exc), delay, tries)
                self._wake.wait(delay)  # a plain wait: no core is held while the server is away
                self._wake.clear()
        return None
