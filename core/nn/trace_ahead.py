"""A decode step's TorchScript trace, made on another thread while the first steps run without it.

Tracing a step and the executor's first two runs of it cost about 75 ms on the shipped model,
paid by the first decode steps of a fresh process: 30% of the first 110 tokens' time. Made
here instead, on its own scratch cache, while the engine loads the tokenizer, encodes the prompt
and fills the cache; until it is ready, steps run the same function eagerly (the same ops).
Every step is traced as a `StepModule`, which registers the products the step reads.
"""
from __future__ import annotations

import threading

import torch
from torch import nn


class TraceAhead:
    def __init__(self, function, example_inputs: tuple):
        self._traced = None
        # Not a daemon: the interpreter waits for it (a tenth of a second at most) before it exits. A
        # daemon thread still inside torch when the interpreter ends aborts the process (SIGABRT).
        self._thread = threading.Thread(target=self._make, args=(function, example_inputs), daemon=False,
                                        name="tfchat-trace-ahead")
        self._thread.start()

    def _make(self, function, example_inputs: tuple) -> None:
        with torch.inference_mode():  # thread-local: the steps run in it too
            traced = torch.jit.trace(function, example_inputs, check_trace=False)
            for _ in range(2):  # the profiling executor's first runs are the slow ones
                traced(*example_inputs)
        self._traced = traced

    def ready(self):
        """The trace, or None while it is being made."""
        return self._traced

    def wait(self, timeout: float | None = None):
        self._thread.join(timeout)
        return self._traced


class StepModule(nn.Module):
    """A step function as a module for `torch.jit.trace`: fbgemm's packed weights are script objects,
    which a trace reaches only through registered modules (the products, registered here)."""

    def __init__(self, function, products: nn.ModuleList):
        super().__init__()
        self.products = products
        self.function = function

    def forward(self, *inputs):
        return self.function(*inputs)
