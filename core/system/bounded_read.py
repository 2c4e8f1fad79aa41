"""Reading what a user hands tfchat (standard input, a prompts file, a text to score) within a stated bound.

Read in chunks: memory stays flat whatever the source (`/dev/zero`, a pipe that never ends), a signal's
handler runs between chunks so SIGINT and SIGTERM end the read at once (one `read()` of a source that
never blocks would not return to Python to run it), and past the bound the caller gets one line.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tfchat.core.errors import PromptError
from tfchat.core.system.files import not_a_file

CHUNK_BYTES = 1 << 20
# A prompt (standard input, a prompts file) beyond this is no prompt: the model sees its last window only.
MAX_PROMPT_BYTES = 64 * 2**20


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
    # Pipes (`<(command)`) and character devices such as /dev/stdin are read within the bound; a directory
    # is no text at all (open() says what else is wrong).
    if not_a_file(Path(path)) == "is a directory":
        raise PromptError(f"{path}: is a directory, not a file of text")
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
