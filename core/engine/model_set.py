"""Several models resident at once, a backend each, and one prompt decoded by all of them together.

`ModelsBatch` runs one generation per backend, each on its own thread (each engine process is a core's
worth of work of its own), and merges their news into the `RowEvent`s a batch yields: a comparison
across models looks, to its caller, exactly like a comparison across presets.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path

from tfchat.core.engine.text_stream import RowEvent
from tfchat.core.errors import TfchatError, describe_exception
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.files import stored_bytes

# A checkpoint's weights as the engine holds them: float32 (a float16 file doubles), plus the working set.
RESIDENT_PER_STORED_BYTE = 2.2


def available_memory_bytes() -> int | None:
    """MemAvailable: what this machine can still give without swapping (None where it does not say)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def refusal_to_load(path: Path, available: int | None) -> str | None:
    """Why another model cannot be loaded beside the ones resident (one line), or None when it fits."""
    try:
        needed = int(stored_bytes(path) * RESIDENT_PER_STORED_BYTE)
    except OSError as exc:
        return f"{path}: cannot open ({exc.strerror or exc})"
    if available is not None and needed > available:
        return (f"{path}: needs about {needed / 2**20:,.0f} MiB resident and this machine has "
                f"{available / 2**20:,.0f} MiB available; not loaded")
    return None


class ModelsBatch:
    """The same context under `params`, one row per backend, decoded in parallel; iterate for RowEvents."""

    def __init__(self, backends: list, context: str, params: SamplingParams, cancel: threading.Event | None):
        self._backends = backends
        self._context = context
        self._params = params
        self._cancel = cancel
        self.texts = [""] * len(backends)
        self.stats: list = [None] * len(backends)
        self.notices: list[str | None] = [None] * len(backends)

    def _run_row(self, row: int, news: queue.SimpleQueue) -> None:
        try:
            generation = self._backends[row].generate(self._context, self._params, self._cancel)
            self.notices[row] = generation.notice
            for piece in generation:
                news.put(RowEvent(row, piece))
            news.put(RowEvent(row, "", generation.stats))
        except TfchatError as exc:
            news.put(RowEvent(row, "", error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - one row failing is that row's line, not the batch's end
            news.put(RowEvent(row, "", error=f"generation failed: {describe_exception(exc)}"))

    def __iter__(self):
        news: queue.SimpleQueue = queue.SimpleQueue()
        threads = [threading.Thread(target=self._run_row, args=(row, news), daemon=True, name=f"tfchat-model-{row}")
                   for row in range(len(self._backends))]
        for thread in threads:
            thread.start()
        running = len(threads)
        while running:
            event = news.get()
            self.texts[event.row] += event.piece
            if event.stats is not None or event.error is not None:
                running -= 1
                self.stats[event.row] = event.stats
            yield event
        for thread in threads:
            thread.join()


class ModelsEngine:
    """Several backends behind the one method a comparison calls, `generate_batch`."""

    def __init__(self, backends: list):
        self.backends = backends

    def generate_batch(self, contexts: list[str], params: list[SamplingParams],
                       cancel: threading.Event | None = None) -> ModelsBatch:
        if len(contexts) != len(self.backends):
            raise TfchatError(f"{len(self.backends)} models, {len(contexts)} contexts")
        return ModelsBatch(self.backends, contexts[0], params[0], cancel)
