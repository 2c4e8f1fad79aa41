"""What `bench` says about how a step runs here: the kernel each part takes, and tokens/s on one reader
(one intra-op thread and the helper) against two (both cores), beside what the engine chose itself."""
from __future__ import annotations

from collections.abc import Callable


def reader_figures(model, rate: Callable[[], float]) -> dict:
    """`rate()` measures tokens/s as the rest of the bench does; each reader count is fixed in turn."""
    figures = {"kernels": model.kernels()}
    core = model.second_core
    if core is None:
        return figures
    try:
        for readers in (1, 2, 1, 2):  # interleaved: a noisy machine slows both alike
            core.fix(readers)
            key = f"readers_{readers}_tokens_per_s"
            figures[key] = round(max(figures.get(key, 0.0), rate()), 2)
    finally:
        core.fix(None)
    figures["two_readers_gain"] = round(figures["readers_2_tokens_per_s"] / figures["readers_1_tokens_per_s"], 3)
    return figures


def reader_rows(r: dict) -> list[tuple[str, str]]:
    kernels = r["kernels"]
    rows = [("kernels", f"blocks: {kernels['blocks']}; output layer: {kernels['output layer']}")]
    if "readers_1_tokens_per_s" in r:
        rows.append(("one reader (1 thread + helper) / two (both cores)",
                     f"{r['readers_1_tokens_per_s']:.1f} / {r['readers_2_tokens_per_s']:.1f} tok/s "
                     f"({r['two_readers_gain']:.2f}x; the engine takes two only while the other core is idle)"))
    return rows
