"""A training text read for its index: checked before a byte is read, and its SHA-256, which names it.

What the index of a text needs while it is built is about 64 bytes a token (a few int64 arrays of the
suffix sort), and a token is about 4 bytes of English: a text is refused, in one line, when that would not
fit in the memory this machine has free.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tfchat.core.engine.model_set import available_memory_bytes
from tfchat.core.errors import CorpusError
from tfchat.core.system.files import not_a_file

BUILD_BYTES_PER_TEXT_BYTE = 16  # ~64 bytes a token while the suffix array is sorted, ~4 text bytes a token


@dataclass(frozen=True)
class CorpusText:
    path: Path
    text: str
    sha256: str


def check_corpus_file(path: Path, available: int | None = None) -> int:
    """The file's size when it can be indexed here; else a CorpusError saying why, before any byte is read."""
    problem = not_a_file(path)  # None only for a readable regular file
    if problem:
        raise CorpusError(f"{path}: {problem}; the corpus is the UTF-8 text file the model was trained on")
    size = path.stat().st_size
    if size == 0:
        raise CorpusError(f"{path}: the file is empty")
    free = available_memory_bytes() if available is None else available
    needed = size * BUILD_BYTES_PER_TEXT_BYTE
    if free is not None and needed > free:
        raise CorpusError(f"{path}: {size / 2**20:,.0f} MiB of text needs about {needed / 2**30:.1f} GiB to index, "
                          f"and {free / 2**30:.1f} GiB are free here; index a part of it")
    return size


def read_corpus(path: Path) -> CorpusText:
    path = Path(path)
    check_corpus_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise CorpusError(f"{path}: the file holds only whitespace")
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{path}: looks binary (NUL bytes); the corpus is a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    return CorpusText(path, text, hashlib.sha256(data).hexdigest())
