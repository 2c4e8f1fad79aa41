"""Every process tfchat starts ends with it, whatever ends tfchat.

Three pieces, each small:
- a registry of the child processes tfchat started, so any exit path can end them;
- a watchdog that ends the process for good when a graceful exit does not finish
  (Textual's shutdown can block forever writing to a terminal that is gone);
- a guard the children run, so a child whose parent died (SIGKILL, a crash)
  ends too instead of waiting on a pipe nobody reads.

All of it blocks on timers and events; nothing spins.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

_children: list = []  # multiprocessing.Process objects, newest last
_children_lock = threading.Lock()

# Signals that mean "the session is over": the terminal went away or someone asked us to end.
EXIT_SIGNALS = tuple(s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None)


def register_child(process) -> None:
    with _children_lock:
        _children[:] = [p for p in _children if p.exitcode is None]
        _children.append(process)


def end_children(grace_s: float = 0.3) -> None:
    """Stop every registered child still alive: SIGTERM, then SIGKILL after `grace_s`."""
    with _children_lock:
        alive = [p for p in _children if p.exitcode is None]
        _children.clear()
    for process in alive:
        _signal_quietly(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in alive:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            _signal_quietly(process, signal.SIGKILL)
            process.join(timeout=1.0)


def _signal_quietly(process, signum: int) -> None:
    try:
        if process.pid is not None:
            os.kill(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def exit_hard_after(seconds: float, code: int) -> threading.Thread:
    """End this process with `code` after `seconds`, unless it has exited by then.

    The last resort of every exit path: children are ended first, then
    `os._exit`, which no blocked thread can hold up.
    """
    def watchdog() -> None:
        time.sleep(seconds)
        end_children(grace_s=0.1)
        os._exit(code)

    thread = threading.Thread(target=watchdog, name="tfchat-exit-watchdog", daemon=True)
    thread.start()
    return thread


def on_exit_signals(handler: Callable[[int], None]) -> None:
    """Call `handler(signum)` on SIGHUP or SIGTERM, once; from the main thread only.

    A plain signal handler, not the event loop's: the handler must run even
    when the loop is blocked (a full writer queue to a dead terminal). It
    should hand its work to a thread and return at once.
    """
    fired = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not fired.is_set():
            fired.set()
            handler(signum)

    for signum in EXIT_SIGNALS:
        signal.signal(signum, on_signal)


def exit_when_orphaned(poll_s: float = 0.25) -> None:
    """In a child: end this process once its parent is gone (checked on a timer)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="tfchat-orphan-guard", daemon=True).start()


def on_terminal_lost(fd: int, handler: Callable[[], None], poll_s: float = 0.5) -> threading.Thread:
    """Call `handler()` once the terminal on `fd` has hung up, checked on a timer.

    A hangup normally arrives as SIGHUP, but not always (a tracer or a wrapper
    in between can swallow it); then every read of the terminal returns at once
    with nothing, and an input loop would spin on a core forever.
    """
    import termios

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                termios.tcgetattr(fd)
            except (termios.error, OSError):  # EIO: the terminal is gone
                handler()
                return

    thread = threading.Thread(target=watch, name="tfchat-terminal-guard", daemon=True)
    thread.start()
    return thread
