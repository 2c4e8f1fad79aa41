"""How a session ends, whatever ends it: quit, a hangup, SIGTERM. The partial exchange is kept, children end.

A mixin of the app: it reads the running request and generation, and writes
through the app's history keeping.
"""
from __future__ import annotations

import os
import signal
import threading
from functools import partial

from core.system.lifecycle import end_children, exit_hard_after
from tui.session import CompareRequest

# An exit must be over within 2 s of a hangup or a quit: what a graceful exit has
# not finished by then, the watchdog ends (Textual can block writing to a dead terminal).
EXIT_DEADLINE_S = 1.5
# How long an exit waits for the stopped generation's last tokens and stats.
STOP_WAIT_S = 0.4


class EndingMixin:
    def end_from_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away) or SIGTERM: keep the partial exchange, end everything.

        Called inside the signal handler, so it only starts a thread: the event
        loop may be the very thing that is stuck (Textual blocks writing frames
        to a terminal that is gone).
        """
        if self._ending.is_set():
            return  # a hangup can arrive twice: as SIGHUP and as the terminal guard's finding
        self._ending.set()
        hangup = signum == getattr(signal, "SIGHUP", None)
        code = 128 + signum
        exit_hard_after(EXIT_DEADLINE_S, code)
        threading.Thread(target=self._end_session, args=("hangup" if hangup else "terminated", code, hangup),
                         name="tfchat-exit", daemon=True).start()

    def _end_session(self, reason: str, code: int, terminal_gone: bool) -> None:
        self._save_interrupted(reason)  # committed to SQLite before anything else can go wrong
        end_children()
        if terminal_gone:
            # Nothing to restore on a terminal that is gone, and Textual's shutdown
            # would block writing to it: leave now, everything worth keeping is kept.
            os._exit(code)
        self._ui_loop.call_soon_threadsafe(partial(self.exit, return_code=code))

    def _save_interrupted(self, reason: str) -> None:
        """Quit, hang-up or SIGTERM mid-generation: stop it and keep the partial output.

        Safe from any thread: it reads the generation's own text, not the widgets.
        """
        request, finished = self.session.active, self.session.generation_finished
        if request is None:
            return
        request.ended_by = reason  # before the stop: whichever path writes the row, it says why
        self.session.cancel.set()
        finished.wait(STOP_WAIT_S)  # the child answers a stop within a token, with its stats
        generation = self.session.active_generation
        if isinstance(request, CompareRequest):
            self.record_compare(request, generation, reason)
            return
        output = generation.text if generation is not None else ""
        stats = generation.stats.as_dict() if generation is not None and generation.stats else {"new_tokens": None}
        self._record(request, output, stats, reason)

    async def action_quit(self) -> None:
        """Quit at once, even while the model loads: the partial exchange is kept, children end."""
        if self.exit_watchdog:
            exit_hard_after(EXIT_DEADLINE_S + 0.5, 0)
        self._save_interrupted("quit")
        end_children()  # a model still loading (or a FIFO that never answers) must not hold the exit
        self.exit()

    def on_unmount(self) -> None:
        if self.engine is not None:
            self.engine.close()
        end_children()

