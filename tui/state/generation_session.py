"""What the app is generating and has generated: the queue, the running request, its stop and
finish events, and the text continue mode feeds back. Plain state and rules, no widgets, so it
is tested without Pilot; the app shows it."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from tfchat.tui.state.requests import BranchRequest, ContinueRequest, Request, transcript_text

# How long keeping an interrupted exchange waits for the stopped generation's last tokens and stats.
STOP_WAIT_S = 0.4


class GenerationSession:
    def __init__(self):
        self.pending: deque[Request] = deque()  # sent, waiting for the running one to end
        self.active: Request | None = None
        self.active_number: int | None = None  # the transcript's number of the view it streams into
        self._generation_of: Callable[[], object] = lambda: None  # its generation now (text and stats so far)
        self.cancel = threading.Event()  # set to stop the active request
        self.generation_finished = threading.Event()  # set by the generating thread when it is done
        self.context_log: list[tuple[str, str]] = []  # (prompt, output) since the last clear
        self.last_prompt: Request | None = None  # what ctrl+r sends again
        self._record_lock = threading.Lock()

    def queue(self, request: Request) -> None:
        if not isinstance(request, (ContinueRequest, BranchRequest)):
            self.last_prompt = request
        self.pending.append(request)

    def next_request(self, can_start: Callable[[Request], bool] = lambda request: True) -> Request | None:
        """The next request to start: only when none is running, and when `can_start` says it can (a
        comparison of models waits for one still loading; the requests after it wait in their order)."""
        if self.active is None and self.pending and can_start(self.pending[0]):
            return self.pending.popleft()
        return None

    def begin(self, request: Request, number: int, generation_of: Callable[[], object] = lambda: None) -> None:
        """`request` runs now, shown in the view numbered `number`, with a fresh stop event and finish event;
        `generation_of()` gives its generation as it stands (an exit keeps what it holds)."""
        self.active, self.active_number, self._generation_of = request, number, generation_of
        self.cancel = threading.Event()
        self.generation_finished = threading.Event()

    def end(self) -> tuple[Request | None, int | None]:
        """The request that was running and its view's number; none is running after this."""
        request, number = self.active, self.active_number
        self.active = self.active_number = None
        self._generation_of = lambda: None
        return request, number

    def record_once(self, request: Request, write: Callable[[], None]) -> None:
        """`write()` the request to the history unless another path did: once, whichever path ends it. The
        write happens under the lock, so an exit that finds the row claimed waits until it is on disk (a hangup
        ends the process right after, and would cut a write the UI thread had only begun)."""
        with self._record_lock:
            if request.recorded:
                return
            request.recorded = True
            write()

    def remember(self, request: Request, output: str) -> None:
        """Keep the exchange's text for continue mode: a continuation or a branch replaces the last one's."""
        if isinstance(request, (ContinueRequest, BranchRequest)) and self.context_log:
            self.context_log[-1] = (self.context_log[-1][0], output)
        else:
            self.context_log.append((request.prompt, output))

    def transcript(self) -> str:
        return transcript_text(self.context_log)

    def continue_context(self, mode: str) -> str:
        """What a continuation is given: the last exchange's own text, or the whole transcript in continue mode."""
        if mode == "continue":
            return self.transcript()
        prompt, output = self.context_log[-1] if self.context_log else ("", "")
        return prompt + output

    def keep_interrupted(self, reason: str, keeper, model: str) -> None:
        """Stop the active request and write what it has to the history once, through `keeper`.

        Safe from any thread: it reads the generation's own text, not the widgets."""
        request, generation_of, finished = self.active, self._generation_of, self.generation_finished
        if request is None:
            return
        request.ended_by = reason  # before the stop: whichever path writes the row, it says why
        self.cancel.set()
        if not request.kept_in_history:
            return
        finished.wait(STOP_WAIT_S)  # the child answers a stop within a token, with its stats
        self.record_once(request, lambda: keeper.record_unfinished(request, generation_of(), reason, model))
