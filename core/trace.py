"""What a generated token can carry: its probability, the alternatives, the sampler's view of them.

Computed on the device from the step's logits and the draw, then packed into
one float tensor, so the host reads it together with the token id in a single
transfer, as it reads the id alone when nothing is traced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from core.sampling import Draw
from core.top_k import top_k

MAX_TOP_LOGPROBS = 20


class Alternative(NamedTuple):  # a tuple: ten are made per token, and a dataclass costs 2 µs each
    id: int
    logprob: float
    """Raw: log_softmax of the logits at temperature 1, before the penalty and the filters."""
    sampled_prob: float
    """After the penalty, temperature and filters; 0 for a token they removed."""


@dataclass(frozen=True)
class StepInfo:
    id: int
    logprob: float
    """The chosen token's raw log-probability (natural log)."""
    sampled_prob: float
    """The probability the sampler drew it with (1 for greedy)."""
    entropy: float
    """Of the raw distribution, in nats."""
    top: tuple[Alternative, ...]
    """The most likely tokens under the raw distribution, most likely first."""

    def as_list(self) -> list:
        """A plain form for pipes and JSON; `from_list` reads it back."""
        return [self.id, self.logprob, self.sampled_prob, self.entropy,
                [[a.id, a.logprob, a.sampled_prob] for a in self.top]]

    @classmethod
    def from_list(cls, data: list) -> "StepInfo":
        token, logprob, sampled, entropy, top = data
        return cls(int(token), float(logprob), float(sampled), float(entropy),
                   tuple(Alternative(int(i), float(lp), float(p)) for i, lp, p in top))


def check_top_logprobs(n: int) -> None:
    from core.errors import PresetError

    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_TOP_LOGPROBS:
        raise PresetError(f"top logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {n!r}")


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
