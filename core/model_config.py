"""The architecture of a book checkpoint, rebuilt from its `h_params`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    d_model: int
    num_heads: int
    num_blocks: int
    context_length: int
    vocab_size: int  # the book's `max_token_value`

    @property
    def head_size(self) -> int:
        return self.d_model // self.num_heads

    def problems(self) -> list[str]:
        """What makes this configuration unbuildable; empty when it is sound."""
        found = []
        for name in ("d_model", "num_heads", "num_blocks", "context_length", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                found.append(f"{name} must be a positive integer, got {value!r}")
        if found:
            return found
        if self.d_model % self.num_heads:
            found.append(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.d_model % 2:
            found.append(f"d_model {self.d_model} must be even for the sinusoidal positions")
        return found
