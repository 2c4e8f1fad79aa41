"""A step's probabilities packed on the device into one float tensor, read by the host with the
token id in a single transfer, as it reads the id alone when nothing is recorded."""
from __future__ import annotations

import math

import torch

from tfchat.core.decode.sampling import Draw
from tfchat.core.decode.step_info import Alternative, StepInfo
from tfchat.core.decode.top_k import top_k


def pack_step(logits: torch.Tensor, draw: Draw, top_n: int) -> torch.Tensor:
    """One float tensor for the host to read with the token id; `unpack_step` reads it.

    Every op here runs once per token, so there are few of them, and the
    arithmetic on a handful of numbers is left to the host. One softmax (the
    sampler's own, when it computed exactly that) gives the log-normaliser
    lse = max logit - log(max p), and the entropy lse - sum(p * logit).
    """
    probs = draw.raw_probs if draw.raw_probs is not None else torch.softmax(logits, dim=0)
    top_logits, top_ids = top_k(logits, top_n)
    token = draw.token.clamp(min=0)
    if draw.probs is None:  # greedy: the chosen token is certain, every other impossible
        sampled, total = (top_ids == token), torch.ones(1, device=logits.device)
    elif draw.candidates is None:
        # The sampler's own softmax, untouched by filters, sums to 1: no pass over it to add it up.
        total = torch.ones(1, device=logits.device) if draw.probs is draw.raw_probs else draw.probs.sum().view(1)
        sampled = draw.probs[top_ids]
    else:  # the filters kept a few candidates: find the alternatives among them
        sampled = (top_ids.unsqueeze(1) == draw.candidates).to(draw.probs.dtype) @ draw.probs
        total = draw.probs.sum().view(1)
    chosen = draw.probs[draw.index].view(1) if draw.probs is not None else total
    return torch.cat([draw.token.view(1), logits[token].view(1), chosen, total, probs[top_ids[0]].view(1),
                      torch.dot(probs, logits).view(1), top_ids, top_logits, sampled])


def unpack_step(values: list[float]) -> StepInfo:
    """The host's reading of `pack_step`:
    [id, logit, chosen mass, total mass, max p, sum p*logit, ids * n, logits * n, masses * n]."""
    token, logit, chosen, total, top_p, mean_logit = values[:6]
    n = (len(values) - 6) // 3
    ids, logits, masses = values[6 : 6 + n], values[6 + n : 6 + 2 * n], values[6 + 2 * n :]
    lse = logits[0] - math.log(top_p) if top_p > 0 else math.inf
    return StepInfo(int(token), logit - lse, chosen / total, lse - mean_logit,
                    tuple(Alternative(int(i), lp - lse, m / total) for i, lp, m in zip(ids, logits, masses)))
