"""Long calls into native code (tokenizing a text of many megabytes) that a signal must still end at once.

Python runs a signal's handler only when the main thread is back in the interpreter; a call that stays in
Rust or C for seconds would hold SIGTERM and Ctrl+C that long. Run there on a helper thread, the main
thread waits in short slices and the handler runs within one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
SLICE_S = 0.05


def interruptible(call: Callable[[], T]) -> T:
    """`call()`'s result (or its exception), with the main thread free to run signal handlers meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        return call()  # only the main thread runs handlers: nothing to gain elsewhere
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller as it was
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="tfchat-native-call", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(SLICE_S)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
