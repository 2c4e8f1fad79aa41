"""The pure functions that turn logits into a next token (the settings: core.settings.sampling_params).

Order, as the common engines apply it: repetition penalty, temperature, top-k,
top-p, min-p. Temperature 0 is greedy (argmax after the penalty). At least one
token always survives the filters.

The draw never returns an id outside the vocabulary: when the logits are not
finite numbers (a model whose weights overflow float32) it returns -1 instead,
and the caller reports it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tfchat.core.decode.top_k import top_k
from tfchat.core.errors import GenerationError
from tfchat.core.settings.sampling_params import SamplingParams

# top-p first looks among this many best tokens; only when they do not reach p
# does it sort the whole vocabulary.
_TOP_P_PROBE = 256

NOT_FINITE = -1  # the id returned when the logits hold NaN or infinity


def logits_not_finite(step: int | None = None) -> GenerationError:
    at = f" at new token {step}" if step is not None else ""
    return GenerationError(f"the model's logits are not finite numbers{at} (its weights overflow float32); "
                           "it cannot generate")


def apply_repetition_penalty(logits: torch.Tensor, window_ids: torch.Tensor, penalty: float,
                             in_place: bool = False) -> torch.Tensor:
    """Each distinct id in the window once: positive logits divided, negative multiplied.

    `in_place` writes into `logits` instead of copying the vocabulary-sized tensor.
    """
    if penalty == 1.0 or window_ids.numel() == 0:
        return logits
    seen = logits.gather(0, window_ids)
    # Duplicated ids all compute the same value from the original logit, so the
    # scatter applies the penalty once per distinct id.
    penalised = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter_(0, window_ids, penalised) if in_place else logits.scatter(0, window_ids, penalised)


def next_token(
    logits: torch.Tensor,
    params: SamplingParams,
    window_ids: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The next token id (a 0-d tensor on the logits' device) from last-position logits [V]."""
    return draw_next(logits, params, window_ids, generator).token


@dataclass
class Draw:
    """A drawn token and the distribution it was drawn from, for whoever wants to show it."""
    token: torch.Tensor  # 0-d id, or NOT_FINITE
    candidates: torch.Tensor | None  # ids `probs` covers; None: the whole vocabulary
    probs: torch.Tensor | None  # unnormalised; None for greedy, which draws nothing
    index: torch.Tensor | None  # where the drawn token is in `probs`
    raw_probs: torch.Tensor | None = None
    """softmax of the raw logits, when the sampler computed exactly that (temperature 1, no penalty,
    no top-k): a trace reuses it instead of computing it again."""


def draw_next(
    logits: torch.Tensor,
    params: SamplingParams,
    window_ids: torch.Tensor,
    generator: torch.Generator | None,
    keep_logits: bool = True,
) -> Draw:
    """The next token and what it was drawn from; `keep_logits=False` lets the penalty overwrite `logits`."""
    logits = apply_repetition_penalty(logits, window_ids, params.repetition_penalty, in_place=not keep_logits)
    if params.temperature == 0:
        # The first best, as argmax picks it, at a third of argmax's time on a vocabulary of 100k (44 against
        # 130 us here); a NaN wins it too, so checking the winner checks them all.
        value, best = torch.max(logits, 0)
        return Draw(torch.where(value.isfinite(), best, NOT_FINITE), None, None, None)
    candidates, probs, softmax = _filtered(logits, params)
    drawn = _draw(probs, generator)
    if candidates is None:
        unchanged = params.temperature == 1.0 and params.repetition_penalty == 1.0
        return Draw(drawn, None, probs, drawn, softmax if unchanged else None)
    index = drawn.clamp(min=0)
    return Draw(torch.where(drawn >= 0, candidates[index], NOT_FINITE), candidates, probs, index)


def filtered_probs(logits: torch.Tensor, params: SamplingParams) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Probabilities after temperature and the filters, unnormalised where zeroed.

    Returns (candidate ids, probs over them); candidate ids is None when probs
    span the whole vocabulary. With top-k set, everything after it touches only
    the survivors, not the vocabulary.
    """
    candidates, probs, _ = _filtered(logits, params)
    return candidates, probs


def _filtered(logits: torch.Tensor, params: SamplingParams) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """`filtered_probs`, and the softmax before top-p and min-p (over the candidates)."""
    candidates = None
    if params.top_k and params.top_k < logits.shape[0]:
        candidates, logits = _top_k_candidates(logits, params.top_k)
    if params.temperature != 1.0:  # after top-k: dividing by a positive number keeps the order
        logits = logits / params.temperature
    softmax = probs = torch.softmax(logits, dim=0)
    if params.top_p < 1.0:
        probs = _top_p(probs, params.top_p)
    if params.min_p > 0.0:
        # The top token always survives: its probability is >= min_p times itself.
        probs = torch.where(probs >= params.min_p * probs.max(), probs, torch.zeros_like(probs))
    return candidates, probs, softmax


def _top_k_candidates(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ids of the k best logits, ties at the k-th value kept, in id order (so a seed draws as it
    always has), and their logits."""
    values, ids = top_k(logits, k + 1)
    if values[k] == values[k - 1] or values[k - 1].isnan():  # a tie across the cut, or NaN: the full search
        candidates = (logits >= values[k - 1]).nonzero().squeeze(1)
        if candidates.shape[0] == 0:  # only NaN compares false with every value
            raise logits_not_finite()
        return candidates, logits[candidates]
    candidates, order = ids[:k].sort()
    return candidates, values[:k][order]


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero every token outside the smallest set whose probability reaches top_p."""
    probe = min(_TOP_P_PROBE, probs.shape[0])
    sorted_probs, order = torch.topk(probs, probe)
    cumulative = sorted_probs.cumsum(0)
    if probe < probs.shape[0] and cumulative[-1] < top_p:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = sorted_probs.cumsum(0)
    # Keep a token when the mass before it is still short of p: this keeps the one that crosses p.
    keep = (cumulative - sorted_probs) < top_p
    kept = torch.zeros_like(probs)
    kept[order[keep]] = sorted_probs[keep]
    return kept


# Vocabularies larger than this are drawn from in two steps (block, then token):
# a reduction per block is far cheaper than a running sum over every entry.
_BLOCK = 256
_TWO_STEP_ABOVE = 8 * _BLOCK


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index drawn with probability proportional to `probs` (never a zero entry).

    NOT_FINITE when the probabilities are not finite numbers.
    """
    # float64 keeps running sums exact enough; MPS has no float64.
    dtype = torch.float32 if probs.device.type == "mps" else torch.float64
    if probs.shape[0] <= _TWO_STEP_ABOVE:
        weights = probs.to(dtype)
        index = _draw_by_cdf(weights, torch.rand(1, generator=generator, device=probs.device, dtype=dtype))
        return torch.where(weights[index] > 0, index, NOT_FINITE)  # NaN > 0 is false
    n = probs.shape[0]
    full = n // _BLOCK * _BLOCK
    block_mass = probs[:full].view(-1, _BLOCK).sum(1)
    if full < n:
        block_mass = torch.cat([block_mass, probs[full:].sum().view(1)])
    u = torch.rand(1, generator=generator, device=probs.device, dtype=dtype)
    block_cdf = block_mass.to(dtype).cumsum(0)
    block = torch.searchsorted(block_cdf, u * block_cdf[-1], right=True).clamp_(max=block_mass.shape[0] - 1)
    # Where u fell inside that block, as a fraction of the block's own mass.
    before = torch.where(block > 0, block_cdf[(block - 1).clamp(min=0)], torch.zeros_like(u))
    inside = ((u * block_cdf[-1] - before) / block_mass[block].to(dtype)).clamp_(0, 1)
    offsets = block * _BLOCK + torch.arange(_BLOCK, device=probs.device)
    in_range = offsets < n
    values = torch.where(in_range, probs[offsets.clamp(max=n - 1)], torch.zeros((), dtype=probs.dtype,
                                                                                  device=probs.device))
    index = _draw_by_cdf(values.to(dtype), inside)
    # A drawn entry is > 0 and in range whenever the mass is finite; NaN anywhere fails this test.
    return torch.where(in_range[index] & (values[index] > 0), offsets[index], NOT_FINITE)


def _draw_by_cdf(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw with u in [0, 1): the first entry whose running sum passes u * total."""
    cdf = weights.cumsum(0)
    # Just below the total, so rounding can never land past the last non-zero entry.
    target = torch.minimum(u * cdf[-1], cdf[-1] * (1 - 2**-30))
    index = torch.searchsorted(cdf, target, right=True)
    return index.clamp_(max=weights.shape[0] - 1)[0]
