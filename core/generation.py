"""Token-level generation: ids in, ids out, one at a time. Knows nothing of text.

While the text fits the window, a KV cache makes each step one position of
work. Past the window the book crops to the last `context_length` tokens and
positions restart at 0, which shifts every cached key, so each step then
recomputes the cropped window exactly as the book does.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

import torch

from core.errors import PromptError
from core.fast_model import FastModel
from core.sampling import SamplingParams, next_token


def generate_ids(
    model: FastModel,
    prompt_ids: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[int]:
    """Yield up to `params.max_new_tokens` new token ids; stop early when `cancel` is set."""
    if not prompt_ids:
        raise PromptError("the prompt is empty: the model needs at least one token to continue")
    C = model.config.context_length
    n = len(prompt_ids)
    # The whole sequence lives on the device; sampled ids are written there
    # directly, so the only host round trip per token is the id we yield.
    sequence = torch.empty(n + params.max_new_tokens, dtype=torch.long, device=model.device)
    sequence[:n] = torch.tensor(prompt_ids, dtype=torch.long)
    cache = model.new_cache()
    length = n
    for _ in range(params.max_new_tokens):
        if cancel is not None and cancel.is_set():
            return
        window_start = max(0, length - C)
        if length > C:
            logits = model.last_logits(sequence[window_start:length])
        elif cache.length == 0:
            logits = model.last_logits(sequence[:length], cache)
        else:
            logits = model.last_logits(sequence[length - 1 : length], cache)
        token = next_token(logits, params, sequence[window_start:length], generator)
        sequence[length] = token
        length += 1
        yield int(token)
