"""The machine's read bandwidth, the true ceiling of a decode step: one step reads every weight once.

Timed as a streaming read (a sum) of as many bytes as a step reads, on one core and on every core, the
best of a few rounds: a model whose weights fit in the caches (this machine's last level holds 480 MiB)
is read from them, and its ceiling is theirs. Beyond the caches it is the memory's, reported beside it.
A matrix-vector product is a poor stand-in: one kernel on one core (llama.cpp reads above it here).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from tfchat.core.system.helper_thread import usable_cores

ROUNDS = 5
_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def largest_cache_bytes() -> int:
    """The largest CPU cache (Linux says it under /sys); 32 MiB where it does not."""
    sizes = []
    for entry in _CACHES.glob("index*/size"):
        text = entry.read_text().strip().upper()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=32 * 2**20)


def read_bandwidth(threads: int, size: int | None = None, rounds: int = ROUNDS) -> float:
    """Bytes a second read on `threads` threads, streaming `size` bytes (default: twice the largest cache,
    at least 256 MiB: the memory's own speed)."""
    size = size or max(2 * largest_cache_bytes(), 256 * 2**20)
    buffer = torch.ones(max(size // 4, 1))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        buffer.sum()  # every page touched once before timing
        best = float("inf")
        for _ in range(max(rounds, min(1000, 2**26 // size))):  # a small read is timed more often
            started = time.perf_counter()
            buffer.sum()
            best = min(best, time.perf_counter() - started)
    finally:
        torch.set_num_threads(before)
    return buffer.numel() * 4 / best


def machine_read_bandwidth(size: int | None = None) -> tuple[float, float]:
    """(one core, every core this process may use) bytes a second, reading `size` bytes."""
    return read_bandwidth(1, size), read_bandwidth(usable_cores(), size)


def ceiling_figures(model, engine_tokens_per_s: float, matvec_bytes_per_s: float) -> dict:
    """The ceiling a model's decode step can reach here, and where the engine stands against it: tok/s if a
    step did nothing but read its weights once (`FastModel.weight_bytes_per_token`, in the form they are read),
    at every core's read bandwidth and at one core's."""
    per_token = model.weight_bytes_per_token()
    one, every = machine_read_bandwidth(per_token)
    every = max(every, one)  # a read too small to share is read on one core: both cannot do worse
    memory = read_bandwidth(usable_cores())
    return {"read_bandwidth_gb_s": round(every / 1e9, 2), "read_bandwidth_one_core_gb_s": round(one / 1e9, 2),
            "memory_bandwidth_gb_s": round(memory / 1e9, 2),
            "matvec_bandwidth_gb_s": round(matvec_bytes_per_s / 1e9, 2),
            "limit_tokens_per_s": round(every / per_token, 2), "limit_one_core_tokens_per_s": round(one / per_token, 2),
            "fraction_of_limit": round(engine_tokens_per_s * per_token / every, 3),
            "fraction_of_one_core_limit": round(engine_tokens_per_s * per_token / one, 3)}


def ceiling_rows(r: dict) -> list[tuple[str, str]]:
    return [
        ("read bandwidth (streaming a step's bytes)",
         f"{r['read_bandwidth_gb_s']:.1f} GB/s on every core, {r['read_bandwidth_one_core_gb_s']:.1f} on one "
         f"(beyond the caches {r['memory_bandwidth_gb_s']:.1f}; the output layer's matvec {r['matvec_bandwidth_gb_s']:.1f})"),
        ("ceiling (weights read once per token)",
         f"{r['limit_tokens_per_s']:.1f} tok/s on every core, {r['limit_one_core_tokens_per_s']:.1f} on one"),
        ("engine / ceiling", f"{r['fraction_of_limit'] * 100:.0f}% ({r['fraction_of_one_core_limit'] * 100:.0f}% "
                             "of one core's)"),
    ]
