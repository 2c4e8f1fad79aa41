"""Looking inside the book's model: each head's attention, every position's log-probabilities, and
what switching heads off changes.

Whole windows at positions 0..T-1, as the book computes them (no cache): the attention is written
out (scores, mask, softmax, weighted sum) so its parts can be read, and a head "switched off" has
its output zeroed before the projection. The weights are the engine's (`FastModel`), so what is
seen here is what generates.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from array import array

import torch

from tfchat.core.errors import GenerationError, PromptError
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.inside_data import AttentionMaps, NextToken, ScoredText, ScoredToken

Heads = frozenset[tuple[int, int]]  # (layer, head) pairs switched off
TOP = 5  # likeliest tokens kept per scored step (the token cursor shows them)
WINDOWS_PER_PASS = 32  # windows past the first decoded together when scoring: bounded memory


def _hidden(model: FastModel, windows: torch.Tensor, off: Heads, last_only: bool,
            keep: list | None = None) -> torch.Tensor:
    """The final LayerNorm's output for windows [B, T] (every row, or the last row of each window).

    `keep`, when given, receives each layer's (scores, weights), each [B, H, T, T], written out as
    the book computes them; otherwise attention goes through torch's fused causal kernel (the same
    sums, within 1e-6), which never holds a T x T matrix per head."""
    B, T = windows.shape
    x = model.embedding[windows] + model.positions[:T]
    mask = torch.full((T, T), float("-inf"), device=model.device).triu(1)
    last = len(model.blocks) - 1
    for layer, block in enumerate(model.blocks):
        q, k, v = model.project_qkv(x, block)
        if keep is not None:
            scores = (q @ k.transpose(-2, -1)) * model.config.attention_scale
            weights = torch.softmax(scores + mask, dim=-1)
            keep.append((scores, weights))
            attention = weights @ v
        elif layer == last and last_only:  # nothing after the last block needs the other rows
            attention, x = model.attend(q[:, :, -1:], k, v), x[:, -1:]
        else:
            attention = model.attend(q, k, v, causal=True)
        for off_layer, head in off:
            if off_layer == layer:
                attention[:, head] = 0
        x = model.after_attention(x, attention, block)
    if last_only:
        x = x[:, -1]
    return model.final_norm(x)


def check_heads(model: FastModel, heads) -> Heads:
    """The (layer, head) pairs as a set; one line naming the model's ranges for one it lacks."""
    L, H = model.config.num_blocks, model.config.num_heads
    for layer, head in heads:
        if not (0 <= layer < L and 0 <= head < H):
            raise PromptError(f"head {layer}.{head}: the model has layers 0-{L - 1} and heads 0-{H - 1}")
    return frozenset(heads)


@torch.inference_mode()
def attention_maps(model: FastModel, ids: list[int]) -> AttentionMaps:
    """Every layer's and head's scores and weights over the window `ids` (at most context_length)."""
    assert 0 < len(ids) <= model.config.context_length, "the caller crops to the window"
    kept: list = []
    _hidden(model, torch.tensor([ids], device=model.device), frozenset(), last_only=True, keep=kept)
    scores = torch.stack([s[0] for s, _ in kept]).float().cpu()  # [L, H, T, T]
    weights = torch.stack([w[0] for _, w in kept]).float().cpu()
    return AttentionMaps(tuple(ids), len(kept), model.config.num_heads,
                         array("f", weights.flatten().tolist()), array("f", scores.flatten().tolist()))


@torch.inference_mode()
def next_token(model: FastModel, ids: list[int], off: Heads, chosen: int | None, top_n: int = TOP) -> NextToken:
    """The distribution after the window `ids` with the heads `off` switched off."""
    x = _hidden(model, torch.tensor([ids], device=model.device), off, last_only=True)
    logprobs = torch.log_softmax(model.output_layer(x[0]).float(), dim=-1)
    values, top_ids = torch.topk(logprobs, min(top_n, logprobs.shape[-1]))
    top = tuple((int(i), math.exp(float(v))) for i, v in zip(top_ids.tolist(), values.tolist()))
    return NextToken(top, float(logprobs[chosen]) if chosen is not None else None)


@torch.inference_mode()
def layer_logits(model: FastModel, ids: torch.Tensor) -> torch.Tensor:
    """The logit lens: logits [num_blocks, V] for the token after the window `ids` (positions 0..T-1),
    the final LayerNorm and output layer applied to the residual stream after each block; the last
    row is the model's own prediction."""
    assert ids.shape[0] <= model.config.context_length, "the caller crops to the window"
    x = (model.embedding[ids] + model.positions[: ids.shape[0]]).unsqueeze(0)
    rows = []
    for block in model.blocks:
        q, k, v = model.project_qkv(x, block)
        x = model.after_attention(x, model.attend(q, k, v, causal=True), block)
        rows.append(x[0, -1])
    normed = model.final_norm(torch.stack(rows))
    return torch.stack([model.output_layer(row) for row in normed])


@torch.inference_mode()
def lens_spread(model: FastModel, ids: list[int]) -> list[tuple[float, float]]:
    """For each block of the logit lens: its prediction's entropy, and its KL divergence from the final
    prediction, KL(final || block), in nats (0 for the last block, which is the final prediction)."""
    logprobs = torch.log_softmax(layer_logits(model, torch.tensor(ids, device=model.device)).float(), dim=-1)
    entropy = -(logprobs.exp() * logprobs).nan_to_num().sum(dim=-1)
    final = logprobs[-1]
    kl = (final.exp() * (final - logprobs)).nan_to_num().sum(dim=-1).clamp(min=0)
    return [(float(e), float(d)) for e, d in zip(entropy.tolist(), kl.tolist())]


def _scored(logits: torch.Tensor, targets: torch.Tensor, first: int = 1, top: int = TOP) -> list[ScoredToken]:
    """Rows of logits [N, V] and the tokens that came [N]: each token's log-probability, rank, entropy.
    `first` is the first row's token's place in the text (counted from 0), for the message on non-finite logits."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    chosen = logprobs.gather(1, targets[:, None])[:, 0]
    ranks = torch.count_nonzero(logprobs > chosen[:, None], dim=1) + 1  # sum() would copy the mask to int64
    entropy = -(logprobs.exp() * logprobs).sum(dim=1)
    # Finite weights can still overflow float32 in the logits: a NaN or infinity anywhere in a row reaches
    # its log-probability or its entropy. Such a score is no number to report.
    bad = ~(torch.isfinite(chosen) & torch.isfinite(entropy))
    if bool(bad.any()):
        at = first + int(bad.nonzero()[0, 0])
        raise GenerationError(f"the model's logits are not finite numbers at token {at + 1} of the text (its "
                              "weights overflow float32); it cannot score")
    if top == 0:  # the alternatives are the token cursor's; a score printed line by line has no use for them
        return [ScoredToken(int(t), float(lp), int(r), float(e), ())
                for t, lp, r, e in zip(targets.tolist(), chosen.tolist(), ranks.tolist(), entropy.tolist())]
    values, top_ids = torch.topk(logprobs, min(top, logprobs.shape[-1]), dim=1)
    return [ScoredToken(int(t), float(lp), int(r), float(e), tuple(zip(ti, tv)))
            for t, lp, r, e, ti, tv in zip(targets.tolist(), chosen.tolist(), ranks.tolist(), entropy.tolist(),
                                           top_ids.tolist(), values.tolist())]


def score_ids(model: FastModel, ids: list[int], off: Heads = frozenset(), cancel=None) -> ScoredText:
    """Every token after the first given the up-to-context_length tokens before it, as the book crops,
    with the likeliest alternatives at each (what the app's score view shows)."""
    return ScoredText(ids[0], tuple(token for scored in score_passes(model, ids, off, cancel) for token in scored))


def score_passes(model: FastModel, ids: list[int], off: Heads = frozenset(), cancel=None,
                 top: int = TOP) -> Iterator[list[ScoredToken]]:
    """The scored tokens a pass at a time, so a long text is printed as it goes in flat memory.

    The first window gives every position's prediction in one pass; each token after it has a
    window of its own (its last context_length tokens, at positions 0..C-1), decoded
    WINDOWS_PER_PASS at a time with only their last rows taken through the output layer."""
    for logits, targets, first in logit_passes(model, ids, off, cancel):
        yield _scored(logits, targets, first, top) if len(targets) else []


def logit_passes(model: FastModel, ids: list[int], off: Heads = frozenset(), cancel=None):
    """(logits [N, V], the tokens that came [N], the first one's place in the text) a pass at a time:
    every token after the first, given the up-to-context_length tokens before it (`score_passes`)."""
    C = model.config.context_length
    with torch.inference_mode():
        tokens = torch.tensor(ids, device=model.device)
        first = tokens[: min(len(ids), C)]
        rows = _hidden(model, first[None], off, last_only=False)[0, :-1]
        logits = model.output_layer(rows) if len(first) > 1 else torch.empty(0, model.config.vocab_size)
    yield logits, first[1:], 1
    for start in range(C, len(ids), WINDOWS_PER_PASS):
        if cancel is not None and cancel.is_set():
            return
        with torch.inference_mode():
            ends = range(start, min(start + WINDOWS_PER_PASS, len(ids)))
            windows = torch.stack([tokens[end - C: end] for end in ends])
            last = _hidden(model, windows, off, last_only=True)
            logits = model.output_layer(last)
        yield logits, tokens[ends.start: ends.stop], ends.start
