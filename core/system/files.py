"""Files checked before anything reads them (a model file: plain Python, so the app's process can say
what is wrong with it before its window opens), and a text written whole or not at all."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from tfchat.core.errors import CheckpointError


def not_a_file(path: Path) -> str | None:
    """Why `path` is no regular file to read, in the words a message needs ('is a named pipe (FIFO)',
    'is a directory', 'does not exist', 'cannot be read: permission denied'); None when it is one."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {(exc.strerror or str(exc)).lower()}"
    if stat.S_ISREG(mode):
        return None if os.access(path, os.R_OK) else "cannot be read: permission denied"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is a device"


def check_model_file(path: Path) -> os.stat_result:
    """The file's stat when it is a readable regular file or a model folder; else a CheckpointError saying
    what it is."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        config = path / "config.json"
        if config.is_file():
            return info  # a model folder (`tfchat export`): its loader checks its files
        if os.path.lexists(config):
            raise CheckpointError(f"{config}: {not_a_file(config)}, not a model folder's config file")
        raise CheckpointError(f"{path}: is a directory without config.json, neither a checkpoint file nor a model "
                              "folder that tfchat export writes")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block the load forever, or cannot be seeked as a zip needs.
        raise CheckpointError(f"{path}: {not_a_file(path)}, not a regular file; save the checkpoint to a file")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: permission denied")
    return info


def stored_bytes(path: Path) -> int:
    """A model's bytes on disk: the file, or a folder's files."""
    if path.is_dir():
        return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
    return path.stat().st_size


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temporary file beside it, flushed, then renamed over
    it, so a full disk or a kill midway leaves any earlier file as it was."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
