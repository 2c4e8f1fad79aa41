"""An index built once per training text and tokenizer, kept on disk and reused by every process.

A folder in the cache directory (`$XDG_CACHE_HOME/tfchat/corpus-index/`) named by the text's SHA-256
and the tokenizer: the token ids and the suffix array as raw int32, and a small JSON description. A
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

import torch

from tfchat.core.corpus.corpus_text import CorpusText
from tfchat.core.corpus.index import CorpusIndex
from tfchat.core.corpus.suffix_array import build_suffix_array
from tfchat.core.errors import CorpusError
from tfchat.core.system.paths import cache_dir

FORMAT = 1


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


def load_or_build(corpus: CorpusText, tokenizer_key: str, encode: Callable[[str], list[int]]) -> LoadedIndex:
    """The corpus's index: read from the cache when it is there and whole, else built (and cached)."""
    folder = index_folder(corpus, tokenizer_key)
    started = time.perf_counter()
    index = read_index(folder, corpus.sha256, tokenizer_key)
    if index is not None:
        return LoadedIndex(index, corpus, False, time.perf_counter() - started, folder)
    ids = encode(corpus.text)
    if not ids:
        raise CorpusError(f"{corpus.path}: encodes to no tokens")
    tokens = torch.tensor(ids, dtype=torch.int32)
    suffixes = build_suffix_array(tokens)
    index = CorpusIndex(_as_array(tokens), _as_array(suffixes))
    seconds = time.perf_counter() - started
    try:
        write_index(folder, index, corpus, tokenizer_key)
    except OSError as exc:  # a read-only or full cache: the index still serves this process
        print(f"tfchat: the corpus index is not cached ({exc.strerror or exc}); it is rebuilt next time",
              file=sys.stderr)
    return LoadedIndex(index, corpus, True, seconds, folder)


def _as_array(values: torch.Tensor) -> array:
    out = array("i")
    out.frombytes(bytes(values.contiguous().untyped_storage()))
    return out


def read_index(folder: Path, sha256: str, tokenizer_key: str) -> CorpusIndex | None:
    """The cached index when the folder holds a whole one for this text and tokenizer; None otherwise."""
    try:
        about = json.loads((folder / "index.json").read_text())
        if (about.get("format"), about.get("sha256"), about.get("tokenizer")) != (FORMAT, sha256, tokenizer_key):
            return None
        count = int(about["tokens"])
        tokens, suffixes = array("i"), array("i")
        with open(folder / "tokens.i32", "rb") as stream:
            tokens.fromfile(stream, count)
        with open(folder / "suffixes.i32", "rb") as stream:
            suffixes.fromfile(stream, count)
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None  # absent, or damaged: built again
    return CorpusIndex(tokens, suffixes)


def write_index(folder: Path, index: CorpusIndex, corpus: CorpusText, tokenizer_key: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        with open(staging / "tokens.i32", "wb") as stream:
            index.tokens.tofile(stream)
        with open(staging / "suffixes.i32", "wb") as stream:
            index.suffixes.tofile(stream)
        (staging / "index.json").write_text(json.dumps(
            {"format": FORMAT, "sha256": corpus.sha256, "tokenizer": tokenizer_key, "tokens": len(index),
             "source": str(corpus.path)}))
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
