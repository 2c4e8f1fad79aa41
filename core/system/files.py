"""A model file checked before anything reads it: plain Python, so the app's process can say
what is wrong with the file before its window opens."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from tfchat.core.errors import CheckpointError


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
        if (path / "config.json").is_file():
            return info  # a model folder (`tfchat export`): its loader checks its files
        raise CheckpointError(f"{path}: is a directory without config.json, neither a checkpoint file nor a model "
                              "folder that tfchat export writes")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block the load forever, or cannot be seeked as a zip needs.
        raise CheckpointError(f"{path}: not a regular file (a pipe or a device); save the checkpoint to a file")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: permission denied")
    return info


def stored_bytes(path: Path) -> int:
    """A model's bytes on disk: the file, or a folder's files."""
    if path.is_dir():
        return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
    return path.stat().st_size
