"""A second core for the engine, taken only when it is free.

torch's own intra-op threads spin-wait for each other: on a box where a
neighbour holds a core, two of them turn every op into a wait for a core they
cannot have. Instead the engine runs with one intra-op thread and hands half
of its largest piece of work to this helper thread, which sleeps on a queue
between jobs. Whoever gets there first does the half: when the helper has not
picked it up by the time the caller has finished its own half (no free core),
the caller does it inline. Nothing ever spins, and a busy box costs at most
the speed of one core.
"""
from __future__ import annotations

import atexit
import os
import queue
import threading
import weakref
from collections.abc import Callable

# Every helper still open, ended before the interpreter's teardown (see `_end_all`).
_OPEN_HELPERS: "weakref.WeakSet[HelperThread]" = weakref.WeakSet()


class _Job:
    __slots__ = ("work", "claim", "done", "error")

    def __init__(self, work: Callable[[], None]):
        self.work = work
        self.claim = threading.Lock()  # held by whoever runs the job
        self.done = threading.Event()
        self.error: BaseException | None = None


class HelperThread:
    """Runs `pair(mine, theirs)`: `mine` on the calling thread, `theirs` here or inline, whichever starts first."""

    def __init__(self):
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="tfchat-helper", daemon=True)
        self._thread.start()
        _OPEN_HELPERS.add(self)

    def pair(self, mine: Callable[[], None], theirs: Callable[[], None]) -> None:
        job = _Job(theirs)
        self._jobs.put(job)
        try:
            mine()
        except BaseException:
            self._settle(job)
            raise
        if job.claim.acquire(blocking=False):
            theirs()  # the helper had no core in time: do it here
            return
        try:
            job.done.wait()  # the helper is on it; it finishes within the job's time
        except BaseException:  # Ctrl+C while waiting
            self._settle(job)
            raise
        if job.error is not None:
            raise job.error

    @staticmethod
    def _settle(job: _Job) -> None:
        """An exception (Ctrl+C) leaves this call: the helper must not be left running torch code, or
        the interpreter, exiting, aborts under it. Cancel the job, or wait the few ms it has left."""
        if not job.claim.acquire(blocking=False):
            while not job.done.wait(0.05):
                pass

    def close(self) -> None:
        """End the thread and wait for it to be gone: a thread that has run torch code and is still
        winding down while the process exits can abort it ("terminate called without an active
        exception"), so no command leaves one behind."""
        self._jobs.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        _OPEN_HELPERS.discard(self)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.claim.acquire(blocking=False):
                continue  # the caller already did it
            try:
                job.work()
            except BaseException as exc:  # handed to the caller, who raises it
                job.error = exc
            finally:
                job.done.set()


@atexit.register
def _end_all() -> None:
    """Whatever a command did not close, before the interpreter (and torch's native state) is torn down."""
    for helper in list(_OPEN_HELPERS):
        helper.close()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def helper_for(device) -> HelperThread | None:
    """A helper thread where a second core can exist and the work runs on the CPU; else None."""
    return HelperThread() if device.type == "cpu" and usable_cores() >= 2 else None
