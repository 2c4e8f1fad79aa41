"""The architecture of a book checkpoint, rebuilt from its `h_params` or read off its tensors."""
from __future__ import annotations

from dataclasses import dataclass

# Far above any model a reader trains on one machine, far below what would
# exhaust memory while merely describing it: a file claiming 10^8 blocks is
# refused before anything is built for it.
UPPER_BOUNDS = {
    "d_model": 16384,
    "num_heads": 256,
    "num_blocks": 256,
    "context_length": 65536,
    "vocab_size": 1 << 20,
}


# The feed-forward activations tfchat computes, by the names transformers' configs give them.
ACTIVATIONS = ("relu", "gelu", "gelu_new", "gelu_pytorch_tanh")


@dataclass(frozen=True)
class ModelConfig:
    d_model: int
    num_heads: int
    num_blocks: int
    context_length: int
    vocab_size: int  # the book's `max_token_value`: the output layer's rows, the ids sampling can draw
    # The embedding's rows, the ids a prompt may use: vocab_size in the chapter's model, one
    # more in the repository's model.py (`max_token_value + 1`). None means vocab_size.
    embedding_rows: int | None = None
    # What tells a GPT-2 (`core.nn.gpt2_folder`) from the book's model; the book's values by default.
    family: str = "book"  # "book" or "gpt2": which tokenizer and which reference it has
    activation: str = "relu"  # the feed-forward's: relu, gelu (erf), gelu_new (tanh approximation)
    positions: str = "sinusoidal"  # or "learned": a trained table of context_length rows
    layer_norm_eps: float = 1e-5  # nn.LayerNorm's default, the book's; a GPT-2 config may say another
    scale_attention: bool = True  # scores divided by sqrt(head size); a GPT-2 may turn it off

    def __post_init__(self):
        if self.embedding_rows is None:
            object.__setattr__(self, "embedding_rows", self.vocab_size)

    @property
    def head_size(self) -> int:
        return self.d_model // self.num_heads

    @property
    def attention_scale(self) -> float:
        return self.head_size ** -0.5 if self.scale_attention else 1.0

    def problems(self) -> list[str]:
        """What makes this configuration unbuildable; empty when it is sound."""
        found = []
        for name in ("d_model", "num_heads", "num_blocks", "context_length", "vocab_size"):
            value = getattr(self, name)
            key = "max_token_value" if name == "vocab_size" else name  # as h_params spell it
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                found.append(f"{key} must be a positive integer, got {str(value)[:40]!r}")
            elif value > UPPER_BOUNDS[name]:
                found.append(f"{key} {value} is beyond what tfchat accepts ({UPPER_BOUNDS[name]})")
        rows = self.embedding_rows
        if not isinstance(rows, int) or isinstance(rows, bool) or not 1 <= rows <= UPPER_BOUNDS["vocab_size"]:
            found.append(f"the embedding's {str(rows)[:40]} rows are not a vocabulary tfchat accepts")
        if found:
            return found
        if self.d_model % self.num_heads:
            found.append(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if self.d_model % 2 and self.positions == "sinusoidal":
            found.append(f"d_model {self.d_model} must be even for the sinusoidal positions")
        if self.activation not in ACTIVATIONS:
            found.append(f"the activation {str(self.activation)[:30]!r} is not one tfchat computes "
                         f"({', '.join(ACTIVATIONS)})")
        return found

    def resident_bytes(self) -> int:
        """Memory the engine keeps for this model in float32: weights (not the causal masks,
        which it never keeps), the position table and the KV cache."""
        D, V, L, C = self.d_model, self.vocab_size, self.num_blocks, self.context_length
        per_block = 4 * D + 3 * D * D + D * D + D + 4 * D * D + 4 * D + 4 * D * D + D
        weights = self.embedding_rows * D + L * per_block + 2 * D + V * D + V
        return 4 * (weights + C * D + 2 * L * C * D)
