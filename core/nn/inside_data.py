"""What the inside views show, as plain data: the app's process reads it without torch.

Computed by `core.nn.inspection`; sent through the engine process's pipe as it is.
"""
from __future__ import annotations

import math
from array import array
from dataclasses import dataclass


@dataclass(frozen=True)
class AttentionMaps:
    """Every layer's and head's attention over one window, as the book computes it.

    `scores[l][h]` is q @ k.T / sqrt(head_size) before the mask (T x T, row-major, queries down);
    `weights[l][h]` is softmax(mask(scores)): each row sums to 1, zeros above the diagonal.
    """
    tokens: tuple[int, ...]  # the window the model saw (past the window: the last context_length tokens)
    num_layers: int
    num_heads: int
    weights: array  # float32, [layer][head][query][key]
    scores: array

    @property
    def size(self) -> int:
        return len(self.tokens)

    def _at(self, layer: int, head: int) -> int:
        return (layer * self.num_heads + head) * self.size * self.size

    def weight_rows(self, layer: int, head: int) -> list[list[float]]:
        start, T = self._at(layer, head), self.size
        return [list(self.weights[start + q * T: start + (q + 1) * T]) for q in range(T)]

    def score_rows(self, layer: int, head: int) -> list[list[float]]:
        start, T = self._at(layer, head), self.size
        return [list(self.scores[start + q * T: start + (q + 1) * T]) for q in range(T)]

    def last_row(self, layer: int, head: int) -> list[float]:
        """How much the window's last token attends to each token: the row the model view shows."""
        start, T = self._at(layer, head), self.size
        return list(self.weights[start + (T - 1) * T: start + T * T])


@dataclass(frozen=True)
class ScoredToken:
    id: int
    logprob: float  # natural log, given up to context_length tokens before it
    rank: int  # 1 for the model's likeliest token
    entropy: float  # of the model's distribution at that step, in nats
    top: tuple[tuple[int, float], ...]  # the likeliest tokens there, (id, logprob), most likely first


@dataclass(frozen=True)
class ScoredText:
    """Every token after the first, scored as the book's crop gives it context."""
    first: int  # the first token, which nothing predicts
    tokens: tuple[ScoredToken, ...]

    @property
    def loss(self) -> float:
        """Mean negative log-probability in nats: the number the book's training loop prints."""
        return -sum(t.logprob for t in self.tokens) / len(self.tokens) if self.tokens else float("nan")

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.tokens else float("nan")


@dataclass(frozen=True)
class NextToken:
    """The distribution at one step, with some heads switched off: what an ablation changes."""
    top: tuple[tuple[int, float], ...]  # (id, probability), most likely first
    chosen_logprob: float | None  # of the token the text has there, when there is one


def shown_perplexity(value: float) -> str:
    """Perplexity to four significant digits, in the app as in the commands: exp() magnifies a loss's last
    bits, which differ from one CPU to another (the loss agrees to 1e-7; its perplexity's cents do not)."""
    return f"{value:.4g}"
