"""`tfchat bench --startup`: how long a user waits for the app, idle and beside a busy neighbour.

The real `tfchat` is started in a pseudo-terminal, as a person starts it, and timed from
outside: the first frame is the first output that holds the status line ("loading"), ready is
the first that holds "ready". Then ctrl+q, as a person quits. The app reports its own view of
the same two moments in its load line and in f8 (`core.system.startup`).
"""
from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import NamedTuple

from tfchat.core.commands.bench.measures import print_table
from tfchat.core.commands.bench.neighbour import busy_neighbour
from tfchat.core.errors import TfchatError

ROUNDS = 3
SIZE = (30, 100)  # rows, columns: a common terminal
GIVE_UP_S = 120
FIRST_FRAME, READY, FAILED = b"loading", b"ready", (b"no model", b"failed")


def _read_until(fd: int, wanted: list[bytes], deadline: float, started: float) -> dict[bytes, float]:
    """Seconds after `started` at which each of `wanted` first appeared in the output."""
    seen: dict[bytes, float] = {}
    output = b""
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.05)  # waits in the kernel: no core is spun
        if not readable:
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break  # the app is gone
        if not chunk:
            break
        output += chunk
        now = time.monotonic() - started
        for marker in wanted:
            if marker not in seen and marker in output:
                seen[marker] = now
        if any(word in output for word in FAILED) and READY not in seen:
            raise TfchatError("bench --startup: the app could not load the model (run `tfchat` to see why)")
    return seen


def _drain(fd: int, seconds: float) -> None:
    """Read and drop what the app writes, so it never blocks on a full terminal."""
    readable, _, _ = select.select([fd], [], [], seconds)
    if readable:
        try:
            os.read(fd, 1 << 16)
        except OSError:
            pass


def _end(pid: int, fd: int) -> None:
    """ctrl+q, as a person quits; then make sure."""
    try:
        os.write(fd, b"\x11")
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _drain(fd, 0.1)
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)


class Start(NamedTuple):
    first_frame_s: float  # after launch
    ready_s: float
    pid: int  # the app's, which led its own session: everything it started shares that session id


def one_start(command: list[str]) -> Start:
    """One start of the app: its first frame and ready, in seconds after launch."""
    started = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, in a terminal of its own
        os.environ["TERM"] = os.environ.get("TERM") or "xterm-256color"
        try:
            os.execv(command[0], command)
        finally:
            os._exit(127)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *SIZE, 0, 0))
        seen = _read_until(fd, [FIRST_FRAME, READY], started + GIVE_UP_S, started)
    finally:
        _end(pid, fd)
    if READY not in seen:
        raise TfchatError(f"bench --startup: the app was not ready within {GIVE_UP_S} s")
    return Start(seen.get(FIRST_FRAME, seen[READY]), seen[READY], pid)


def run_startup_bench(model: str | None, device: str, rounds: int = ROUNDS) -> int:
    with tempfile.TemporaryDirectory(prefix="tfchat-startup-") as scratch:
        command = [sys.executable, "-m", "tfchat", "--device", device,
                   "--history", str(Path(scratch) / "history.sqlite3")]
        command += ["--model", model] if model else []
        one_start(command)  # not counted: the first start reads torch and the model from disk
        idle = [one_start(command) for _ in range(rounds)]
        with busy_neighbour():
            busy = [one_start(command) for _ in range(rounds)]
    figures = {}
    rows = []
    for name, runs in (("idle", idle), ("busy", busy)):
        first = statistics.median(r.first_frame_s for r in runs)
        ready = statistics.median(r.ready_s for r in runs)
        figures[name] = {"first_frame_s": round(first, 3), "ready_s": round(ready, 3),
                         "runs": [[round(r.first_frame_s, 3), round(r.ready_s, 3)] for r in runs]}
        label = "idle" if name == "idle" else "beside a busy neighbour"
        rows.append((f"first frame, {label}", f"{first:.2f} s (median of {rounds})"))
        rows.append((f"ready, {label}", f"{ready:.2f} s"))
    print_table(rows, {"startup": figures})
    return 0
