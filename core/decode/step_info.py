"""What a generated token can carry: its probability, the alternatives, the sampler's view of them.

Plain data, no torch: the app's process reads it too. It is computed on the device by
`core.decode.step_packing`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
    drafted: bool = False
    """Drafted and verified (`core.decode.drafting`): drawn from the same logits as ever, in a pass that
    gave several tokens."""

    def as_list(self) -> list:
        """A plain form for pipes and JSON; `from_list` reads it back."""
        return [self.id, self.logprob, self.sampled_prob, self.entropy,
                [[a.id, a.logprob, a.sampled_prob] for a in self.top], self.drafted]

    @classmethod
    def from_list(cls, data: list) -> "StepInfo":
        token, logprob, sampled, entropy, top = data[:5]
        return cls(int(token), float(logprob), float(sampled), float(entropy),
                   tuple(Alternative(int(i), float(lp), float(p)) for i, lp, p in top), bool(data[5:6] == [True]))


def check_top_logprobs(n: int) -> None:
    from tfchat.core.errors import PresetError

    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_TOP_LOGPROBS:
        raise PresetError(f"top logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {n!r}")
