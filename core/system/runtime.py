"""Process-wide tuning that entry points apply once, never at import."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from tfchat.core.errors import TfchatError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator() -> None:
    """Keep glibc from mapping and unmapping a fresh region for every logits-sized tensor.

    A decode step allocates several vocabulary-sized (~400 KB) temporaries;
    above glibc's mmap threshold each one is a new mapping whose pages fault in
    on first touch, which costs more than the arithmetic on them. Serving them
    from the heap and not trimming it makes sampling ~7x cheaper on CPU.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 2**20)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


THREADS_ENV = "TFCHAT_THREADS"


def resolve_threads(explicit: int | None = None, default: int | None = 1) -> int | None:
    """Intra-op threads for torch: --threads, else $TFCHAT_THREADS, else `default`.

    One by default: torch's OpenMP workers spin-wait for each other, and on a
    box where a neighbour holds a core, a second thread turns every op into a
    wait for a core it cannot have (measured: 200 tok/s down to 4-55). More
    cores are taken only where the caller asks for them. (Training, whose large
    matrix products do use every core, passes default=None: torch's own choice.)
    """
    if explicit is None:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if not raw:
            return default
        try:
            explicit = int(raw)
        except ValueError:
            raise TfchatError(f"${THREADS_ENV} must be a whole number of threads, got {raw[:40]!r}") from None
    if not 1 <= explicit <= 1024:
        raise TfchatError(f"threads must be between 1 and 1024, got {explicit}")
    return explicit


def apply_threads(threads: int | None) -> None:
    """Intra-op threads for torch in this process; None leaves torch's own choice (and torch unimported).

    Commands call it just before they run the model here, not at start-up, so a client of a server
    (--endpoint), the app (its engine has its own process) and a mistake on the command line never
    pay for importing torch.
    """
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
