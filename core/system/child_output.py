"""Where a child process's own output goes while a UI owns the terminal."""
from __future__ import annotations

import os
from pathlib import Path

from tfchat.core.system.paths import state_dir


LOG_LIMIT_BYTES = 1 << 20  # past this the log starts again: it is for the latest sessions


def engine_log_file() -> Path:
    return state_dir() / "engine.log"


def send_output_to_log(path: Path | None = None) -> Path | None:
    """Point this process's stdout and stderr (the descriptors, so C++ writes too) at a log file.

    The app's UI draws every cell of the terminal; a line the engine child printed there (a
    warning from torch, a message from a library) would scroll it under the UI, which then
    looks half-drawn until its next full repaint. Returns the log file, or None where no log
    could be opened and the output is dropped instead."""
    path = path or engine_log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = os.path.getsize(path) < LOG_LIMIT_BYTES if path.exists() else True
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if kept else os.O_TRUNC), 0o600)
    except OSError:
        fd, path = os.open(os.devnull, os.O_WRONLY), None
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if path is not None:
        os.write(2, f"--- tfchat engine process {os.getpid()}\n".encode())
    return path
