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
from core.sampling import SamplingParams, draw_next, logits_not_finite
from core.trace import StepInfo, pack_step, unpack_step


def require_prompt(prompt_ids: list[int]) -> None:
    """The model continues text: it needs at least one token to start from."""
    if not prompt_ids:
        raise PromptError("the prompt is empty: the model needs at least one token to continue")


def generate_ids(
    model: FastModel,
    prompt_ids: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[int]:
    """Yield up to `params.max_new_tokens` new token ids; stop early when `cancel` is set."""
    for token_id, _ in generate_steps(model, prompt_ids, params, generator, cancel):
        yield token_id


def generate_steps(
    model: FastModel,
    prompt_ids: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
    top_logprobs: int = 0,
) -> Iterator[tuple[int, StepInfo | None]]:
    """Yield (id, step information) for each new token; the information is None unless
    `top_logprobs` > 0, when it carries that many alternatives (`core.trace`)."""
    require_prompt(prompt_ids)
    C, V = model.config.context_length, model.config.vocab_size
    # Only the last C tokens ever reach the model (the book crops to them), so the
    # tokens live in a buffer of 2C on the device, whatever max_new_tokens says:
    # `base` is the position of its first entry, and when it fills, its last C
    # entries move to the front. Sampled ids are written there directly, so the
    # only host round trip per token is the id we yield.
    capacity = 2 * C
    kept = prompt_ids[-C:]
    tokens = torch.empty(capacity, dtype=torch.long, device=model.device)
    tokens[: len(kept)] = torch.tensor(kept, dtype=torch.long)
    length = len(prompt_ids)  # positions of the whole text so far
    base = length - len(kept)
    cache = model.new_cache()
    for step in range(params.max_new_tokens):
        if cancel is not None and cancel.is_set():
            return
        if length - base == capacity:
            tokens[:C] = tokens[C:].clone()
            base += C
        window_start = max(0, length - C)
        window = tokens[window_start - base : length - base]
        if length > C:
            logits = model.last_logits(window)
        elif cache.length == 0:
            logits = model.last_logits(window, cache)  # base is 0 here: the window is the whole text
        else:
            logits = model.last_logits(window[-1:], cache)
        info = None
        draw = draw_next(logits, params, window, generator)
        if top_logprobs:
            info = unpack_step(pack_step(logits, draw, top_logprobs).tolist())  # the one host transfer
            token_id = info.id
        else:
            token_id = int(draw.token)
        tokens[length - base] = draw.token
        length += 1
        if not 0 <= token_id < V:
            raise logits_not_finite(step + 1)
        yield token_id, info
