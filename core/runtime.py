"""Process-wide tuning that entry points apply once, never at import."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

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
