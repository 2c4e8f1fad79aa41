"""A decode step replayed as one CUDA graph: one launch a token instead of ~160.

A one-token step over a preallocated cache has fixed shapes (attention reads the
whole cache and masks what is not filled yet), so its kernels can be captured
once and replayed. The graph reads its inputs from, and writes its result to,
tensors it owns; a step copies the token and position in, replays, and the
caller reads the logits out. The graph is bound to one cache's tensors, so it
lives on that cache (`KVCache.decode_graph`) and dies with it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

StepFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class DecodeGraph:
    """`step(ids, position, keys, values) -> logits`, captured for one cache's `keys` and `values`."""

    def __init__(self, step: StepFunction, ids: torch.Tensor, position: int, keys: torch.Tensor,
                 values: torch.Tensor, pool=None):
        self._ids = ids.clone()
        self._position = torch.tensor([position], device=ids.device)
        args = (self._ids, self._position, keys, values)
        # Warm-up on a side stream, as capture requires (lazy inits, allocator). It writes this
        # step's own keys and values at this position, so running it leaves the cache right.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step(*args)
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph, pool=pool):
            self._logits = step(*args)  # capture records kernels; it does not run them

    def __call__(self, ids: torch.Tensor, position: int) -> torch.Tensor:
        self._ids.copy_(ids)
        self._position.fill_(position)
        self._graph.replay()
        return self._logits
