"""An index built once per training text and tokenizer, kept on disk and reused by every process.

A folder in the cache directory (`$XDG_CACHE_HOME/tfchat/corpus-index/`) named by the text's SHA-256
and the tokenizer: the token ids, the suffix array and the line ends as raw int32, and a small JSON
description. Reading one is plain Python; building one (`index_build`) needs torch. A
changed text has another hash, so another folder; a folder is written beside its place and renamed into
it, so a process that reads one never sees it half written.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfchat.core.corpus.corpus_text import CorpusText
from tfchat.core.corpus.index import CorpusIndex
from tfchat.core.errors import CorpusError
from tfchat.core.system.paths import cache_dir

FORMAT = 2
PARTS = ("tokens", "suffixes", "newline_ends")


class NotIndexedYet(CorpusError):
    """The text has no index in the cache, and this process does not build one (the app's)."""


@dataclass
class LoadedIndex:
    index: CorpusIndex
    corpus: CorpusText
    built: bool  # built now (else read from the cache)
    seconds: float  # to build or to read it
    folder: Path


def index_folder(corpus: CorpusText, tokenizer_key: str) -> Path:
    safe_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in tokenizer_key)[:80]
    return cache_dir() / "corpus-index" / f"{corpus.sha256[:32]}-{safe_key}"


def load_or_build(corpus: CorpusText, tokenizer_key: str, encode: Callable[[str], list[int]], newlines: list[int],
                  build: bool = True) -> LoadedIndex:
    """The corpus's index: read from the cache when it is there and whole, else built (and cached); without
    `build`, NotIndexedYet."""
    folder = index_folder(corpus, tokenizer_key)
    started = time.perf_counter()
    index = read_index(folder, corpus.sha256, tokenizer_key)
    if index is not None:
        return LoadedIndex(index, corpus, False, time.perf_counter() - started, folder)
    if not build:
        raise NotIndexedYet(f"{corpus.path}: not indexed yet")
    from tfchat.core.corpus.index_build import build_index  # torch: only where an index is built

    ids = encode(corpus.text)
    if not ids:
        raise CorpusError(f"{corpus.path}: encodes to no tokens")
    index = build_index(ids, newlines)
    seconds = time.perf_counter() - started
    try:
        write_index(folder, index, corpus, tokenizer_key)
    except OSError as exc:  # a read-only or full cache: the index still serves this process
        print(f"tfchat: the corpus index is not cached ({exc.strerror or exc}); it is rebuilt next time",
              file=sys.stderr)
    return LoadedIndex(index, corpus, True, seconds, folder)


def read_index(folder: Path, sha256: str, tokenizer_key: str) -> CorpusIndex | None:
    """The cached index when the folder holds a whole one for this text and tokenizer; None otherwise."""
    try:
        about = json.loads((folder / "index.json").read_text())
        if (about.get("format"), about.get("sha256"), about.get("tokenizer")) != (FORMAT, sha256, tokenizer_key):
            return None
        parts = []
        for name in PARTS:
            part, count = array("i"), int(about[name])
            with open(folder / f"{name}.i32", "rb") as stream:
                part.fromfile(stream, count)
                if stream.read(1):
                    return None  # longer than it says: not the file that was written
            parts.append(part)
        return CorpusIndex(*parts)
    except (OSError, ValueError, KeyError, TypeError, EOFError, AssertionError):
        return None  # absent, or damaged: built again


def write_index(folder: Path, index: CorpusIndex, corpus: CorpusText, tokenizer_key: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        parts = {"tokens": index.tokens, "suffixes": index.suffixes, "newline_ends": index.newline_ends}
        for name, part in parts.items():
            with open(staging / f"{name}.i32", "wb") as stream:
                part.tofile(stream)
        (staging / "index.json").write_text(json.dumps(
            {"format": FORMAT, "sha256": corpus.sha256, "tokenizer": tokenizer_key, "source": str(corpus.path),
             **{name: len(part) for name, part in parts.items()}}))
        if folder.exists():
            shutil.rmtree(folder)  # a damaged one (a whole one was read, above)
        os.rename(staging, folder)
    except OSError:
        if folder.exists() and read_index(folder, corpus.sha256, tokenizer_key) is not None:
            return  # another process wrote it first
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
