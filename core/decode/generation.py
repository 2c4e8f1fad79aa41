"""Token-level generation: ids in, ids out, one at a time. Knows nothing of text.

While the text fits the window, a KV cache makes each step one position of
work. Past the window the book crops to the last `context_length` tokens and
positions restart at 0, which shifts every cached key; each step's window is
then computed as the book does, its first C-1 positions one step ahead (see
`_PastWindow`). The `shift` window policy instead keeps the last half of a full
window, computes it once at positions 0.. and decodes on with the cache.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import torch

from tfchat.core.decode.drafting import DraftStats, drafter_for
from tfchat.core.decode.sampling import draw_next, logits_not_finite
from tfchat.core.decode.step_info import StepInfo
from tfchat.core.decode.step_packing import pack_step, unpack_step
from tfchat.core.errors import PromptError
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.kv_cache import KVCache
from tfchat.core.settings.sampling_params import SamplingParams


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
    """Yield up to `params.max_new_tokens` new token ids (no limit for 0); stop early when `cancel` is set."""
    for token_id, _ in generate_steps(model, prompt_ids, params, generator, cancel):
        yield token_id


def generate_steps(
    model: FastModel,
    prompt_ids: list[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
    top_logprobs: int = 0,
    corpus_index=None,
    draft_stats: DraftStats | None = None,
) -> Iterator[tuple[int, StepInfo | None]]:
    """Yield (id, step information) for each new token; the information is None unless
    `top_logprobs` > 0, when it carries that many alternatives (`core.decode.step_info`).

    Inside the window, tokens are drafted and verified (`core.decode.drafting`) as `params.draft`
    says, from the context and from `corpus_index` (the training text's) when given; the text is the
    same either way. `draft_stats` is filled with what drafting did."""
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
    ahead = _PastWindow(model)
    shifting = params.window == "shift"
    shift_start = base  # with `shift`: where the window begins; it moves only when the window is full
    keep_logits = bool(top_logprobs)  # the trace reads the raw logits after the draw
    stats = draft_stats if draft_stats is not None else DraftStats(params.draft)
    drafter = drafter_for(model, params, prompt_ids, stats, generator, corpus_index)

    def decode_and_draw(window: torch.Tensor, logits_of) -> tuple[torch.Tensor, object]:
        """The drawn token, and what the host reads of it: its id, or its packed step information."""
        with torch.inference_mode():
            logits = logits_of(window)
            draw = draw_next(logits, params, window, generator, keep_logits)
            packed = pack_step(logits, draw, top_logprobs) if top_logprobs else draw.token
            return draw.token, packed.tolist()  # the one host transfer

    def in_window_logits(window: torch.Tensor) -> torch.Tensor:
        """The cache holds the window but its last token (none at first: the window is filled whole)."""
        if drafter is not None:
            return drafter.next_logits(window, cache, None if params.token_limit is None else params.token_limit - step)
        stats.passes += 1
        if cache.length == 0:
            return model.last_logits(window, cache)
        return model.last_logits(window[-1:], cache)

    try:
        for step in itertools.count() if params.token_limit is None else range(params.token_limit):
            if cancel is not None and cancel.is_set():
                return
            if length - base == capacity:
                tokens[:C] = tokens[C:].clone()
                base += C
            if shifting:
                if length - shift_start > C:  # full: keep its last half, computed afresh at positions 0..
                    shift_start = length - max(1, C // 2)
                    cache = model.new_cache()
                    if drafter is not None:
                        drafter.forget()
                window = tokens[shift_start - base : length - base]
                token, host = decode_and_draw(window, in_window_logits)
            elif length > C:  # every token has a window of its own here: nothing to draft
                window = tokens[length - C - base : length - base]
                token, host = ahead.step(window, lambda: decode_and_draw(window, ahead.last_logits))
                stats.passes += 1
                stats.past_window += 1
            else:
                window = tokens[: length - base]  # base is 0 while the text fits
                token, host = decode_and_draw(window, in_window_logits)
            tokens[length - base] = token
            length += 1
            info = unpack_step(host) if top_logprobs else None
            token_id = info.id if info is not None else host
            if not 0 <= token_id < V:
                raise logits_not_finite(step + 1)
            if drafter is not None:
                drafter.took(token_id)
            yield token_id, info
    finally:
        if drafter is not None:
            drafter.forget()  # a verify's drafts taken so far count


class _PastWindow:
    """Steps past the window at the cost of one row, as the book computes them.

    The book's window at each step is the last C tokens at positions 0..C-1. The
    next step's window begins with C-1 tokens known already: their keys and values
    are computed (on the helper thread, while this step decodes and draws) into a
    second cache, and that step then decodes only its last row at position C-1.
    Without a free core the helper's share is done inline, after the draw.
    """

    def __init__(self, model: FastModel):
        self._model = model
        self._ready: KVCache | None = None  # positions 0..C-2 of the current window
        self._spare: KVCache | None = None

    def last_logits(self, window: torch.Tensor) -> torch.Tensor:
        return self._model.last_logits(window[-1:], self._ready)

    def step(self, window: torch.Tensor, decode_and_draw):
        model = self._model
        if self._ready is None:
            self._ready, self._spare = model.new_cache(), model.new_cache()
            model.fill_cache(window[:-1], self._ready)
        result = []
        following = window[1:]  # the next window's first C-1 tokens

        def mine() -> None:
            result.append(decode_and_draw())

        def theirs() -> None:
            model.fill_cache(following, self._spare)

        if model.helper is None:
            mine()
            theirs()
        else:
            model.helper.pair(mine, theirs)
        self._ready, self._spare = self._spare, self._ready
        return result[0]
