"""Whether the next decode step reads the weights on two cores or on one.

Two intra-op threads read the blocks nearly twice as fast (GPT-2 small's shape here: 41 against 25
tok/s), but torch's OpenMP threads spin-wait for each other: beside a neighbour that holds a core,
every op waits for a core the second thread cannot have, and two threads fall far below one. So two
are taken only while the other cores are measured idle (their busy time in /proc/stat, less this
process's own), and the engine goes back to one reader (and its helper thread, which never spins)
as soon as step times say a neighbour has come: two steps in a row slower than 1.5x the best recent
two-thread step. It tries again after a wait that doubles with each such retreat (1 s up to 16 s),
and looks again only every 16 s where two are not faster than one (a tiny model: op overhead).

`TFCHAT_READERS=1` or `2` fixes the choice (bench uses it to measure each).
"""
from __future__ import annotations

import os
import time
from collections import deque

from tfchat.core.errors import TfchatError

READERS_ENV = "TFCHAT_READERS"
SLOWER = 1.5  # a two-thread step this much slower than the best recent one: a neighbour took a core
SLOW_STEPS = 2  # ... so many in a row, and the engine goes back to one reader
IDLE_BELOW = 0.5  # the other cores' busy time (in cores) below which a second reader is taken
FIRST_WAIT, LONGEST_WAIT = 1.0, 16.0  # seconds before trying two again after a retreat
LOOK_EVERY = 0.25  # seconds between looks at the other cores while on one reader
STALE_AFTER, FRESH_WINDOW = 1.0, 0.05  # a load measured over a window older than this is measured afresh
SETTLED_STEPS = 64  # two-thread steps without a retreat after which the wait starts again at FIRST_WAIT
COMPARED_STEPS = 8  # two-reader steps before asking whether two threads are faster at all
RECENT = 16  # two-thread steps the best is taken over (step times change slowly with the cache)


def fixed_readers() -> int | None:
    raw = os.environ.get(READERS_ENV, "").strip()
    if raw in ("", "auto"):
        return None
    if raw not in ("1", "2"):
        raise TfchatError(f"${READERS_ENV} must be 1, 2 or auto, got {raw[:20]!r}")
    return int(raw)


class OtherCoresLoad:
    """The other processes' use of this process's cores since the last look, in cores (None where
    /proc/stat cannot be read)."""

    def __init__(self, stat_path: str = "/proc/stat"):
        self._path = stat_path
        try:
            self._cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
        except (AttributeError, OSError):
            self._cpus = None
        self._last = self._sample()

    def _busy_seconds(self) -> float | None:
        try:
            with open(self._path, "rb") as stat:
                lines = stat.read(1 << 20).decode("ascii", "replace").splitlines()
        except OSError:
            return None
        ticks = 0
        for line in lines:
            fields = line.split()
            if not fields or not fields[0].startswith("cpu") or fields[0] == "cpu":
                continue
            if self._cpus is not None and fields[0] not in self._cpus:
                continue
            # user nice system idle iowait irq softirq steal: all but idle and iowait are busy
            values = [int(v) for v in fields[1:9]]
            ticks += sum(values) - values[3] - values[4]
        return ticks / os.sysconf("SC_CLK_TCK")

    def _sample(self):
        return time.monotonic(), self._busy_seconds(), time.process_time()

    def sampled_at(self) -> float:
        return self._last[0]

    def since_last(self) -> float | None:
        now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        if busy0 is None or busy1 is None or t1 - t0 < 0.02:
            return None if busy1 is None else float("inf")  # too short to tell: not idle yet
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)


class SecondCore:
    """Per step: `readers()` before it (1 or 2), `record(readers, seconds)` after it."""

    def __init__(self, load: OtherCoresLoad | None = None, clock=time.monotonic):
        self._fixed = fixed_readers()
        self._load = load if load is not None else OtherCoresLoad()
        self._clock = clock
        self._two = False
        self._next_look = clock()
        self._wait = FIRST_WAIT
        self._recent_two: deque[float] = deque(maxlen=RECENT)
        self._best = {1: float("inf"), 2: float("inf")}
        self._counted = {1: 0, 2: 0}
        self._slow_run = self._steady_run = self._two_steps = 0
        self.retreats = 0  # times a neighbour sent the engine back to one reader (bench and tests read it)

    def fix(self, readers: int | None) -> None:
        """Always `readers` from now on (bench measures each), or None: choose again."""
        self._fixed = readers

    def current(self) -> int:
        """Threads the steps take now, asking nothing and counting nothing (for passes besides them)."""
        return self._fixed if self._fixed is not None else (2 if self._two else 1)

    def readers(self) -> int:
        if self._fixed is not None:
            return self._fixed
        if self._two:
            self._two_steps += 1
            # Now and then one step on one reader, so that "are two faster?" compares like with like
            # (the first one-reader steps may have run before the step's trace was ready).
            return 1 if self._two_steps % SETTLED_STEPS == 0 else 2
        now = self._clock()
        if now >= self._next_look and self._counted[1] >= 2:  # one-reader steps first, to compare with
            if now - self._load.sampled_at() > STALE_AFTER:  # what the cores did long ago says nothing now:
                self._load.since_last()  # a fresh window, judged a moment from now
                self._next_look = now + FRESH_WINDOW
                return 1
            others = self._load.since_last()
            self._next_look = now + LOOK_EVERY
            # Unknown load (no /proc/stat): try, and let the step times decide.
            if others is None or others < IDLE_BELOW:
                self._two, self._slow_run, self._steady_run = True, 0, 0
        return 2 if self._two else 1

    def record(self, readers: int, seconds: float) -> None:
        if self._fixed is not None:
            return
        self._best[readers] = min(self._best[readers], seconds)
        self._counted[readers] += 1
        if readers == 1 or not self._two:
            return  # (a one-reader step between two-reader ones only refreshes the best above)
        self._recent_two.append(seconds)
        if self._counted[2] >= COMPARED_STEPS and self._best[2] > 0.9 * self._best[1]:
            self._retreat(LONGEST_WAIT)  # two threads gain nothing on this model here: look again rarely
            return
        if seconds > SLOWER * min(self._recent_two):
            self._slow_run += 1
        else:
            self._slow_run = 0
            self._steady_run += 1
            if self._steady_run >= SETTLED_STEPS:
                self._wait = FIRST_WAIT
        if self._slow_run >= SLOW_STEPS:
            self._retreat()

    def _retreat(self, wait: float | None = None) -> None:
        self._two = False
        self.retreats += 1
        self._recent_two.clear()
        self._next_look = self._clock() + (wait or self._wait)
        self._wait = min(self._wait * 2, LONGEST_WAIT)
        self._load.since_last()  # the next look measures from now
