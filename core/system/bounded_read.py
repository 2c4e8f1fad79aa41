"""Reading what a user hands tfchat (standard input, a prompts file, a text to score) within a stated bound.

Read in chunks: memory stays flat whatever the source (`/dev/zero`, a pipe that never ends), a signal's
handler runs between chunks so SIGINT and SIGTERM end the read at once (one `read()` of a source that
never blocks would not return to Python to run it), and past the bound the caller gets one line.
"""
from __future__ import annotations

import os
import stat
import sys

from tfchat.core.errors import PromptError

CHUNK_BYTES = 1 << 20
# A prompt (standard input, a prompts file) beyond this is no prompt: the model sees its last window only.
MAX_PROMPT_BYTES = 64 * 2**20


def kind_of(path: str) -> str | None:
    """What `path` is when it is not a file to read text from: 'a directory', 'a device', or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # open() says what is wrong with it
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None  # files, pipes (`<(command)`), character devices such as /dev/stdin: read within the bound


def _read_within(stream, limit: int, name: str) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PromptError(f"{name}: more than {shown_size(limit)}; give a shorter text")


def read_bounded(path: str | None, limit: int, what: str) -> bytes:
    """The bytes of `path`, or of standard input for None or '-', at most `limit` of them."""
    if path in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise PromptError(f"no {what}: give it as a file, or pipe it on standard input")
        return _read_within(sys.stdin.buffer, limit, "standard input")
    kind = kind_of(path)
    if kind is not None:
        raise PromptError(f"{path}: is {kind}, not a file of text")
    try:
        with open(path, "rb") as file:
            return _read_within(file, limit, path)
    except OSError as exc:
        raise PromptError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def decoded(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def shown_size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit:,} bytes"
