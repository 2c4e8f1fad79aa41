"""How long ago this process was launched: the clock a user's wait for the app starts on.

On Linux the kernel knows when the process began (before the interpreter and any import);
elsewhere the clock starts when this module is first imported (as the app is built), which
leaves out the interpreter's start and the imports before it.
"""
from __future__ import annotations

import os
import time

_IMPORTED_AT = time.monotonic()


def _kernel_age_s() -> float | None:
    try:
        with open("/proc/self/stat", "rb") as stat:
            # The name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as uptime:
            up_s = float(uptime.read().split()[0])
        started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, in clock ticks after boot
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, up_s - started_s)


def seconds_since_launch() -> float:
    age = _kernel_age_s()
    return age if age is not None else time.monotonic() - _IMPORTED_AT


class StartupClock:
    """The moments a user waits for: the first frame on screen, and the model ready."""

    def __init__(self):
        self.first_frame_s: float | None = None
        self.ready_s: float | None = None

    def first_frame(self) -> None:
        if self.first_frame_s is None:
            self.first_frame_s = seconds_since_launch()

    def ready(self) -> None:
        if self.ready_s is None:
            self.ready_s = seconds_since_launch()

    def summary(self) -> str | None:
        """'ready 2.1 s after launch (first frame 0.4 s)', once both are known."""
        if self.first_frame_s is None or self.ready_s is None:
            return None
        return f"ready {self.ready_s:.1f} s after launch (first frame {self.first_frame_s:.1f} s)"
