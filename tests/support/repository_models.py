"""Small stand-ins for the models of the book's public repository, for tests.

They carry the repository's module names, so `state_dict()` gives exactly the keys
its scripts save with `torch.save(model.state_dict(), ...)`, and compute what its
models compute (sinusoidal positions, pre-norm blocks, ReLU, 1/sqrt(head size),
the window cropped to the last `context_length` tokens). Written for these tests
from the facts of those files, at sizes a test can afford.

- `RepositoryModel`: the top-level `model.py`: `layer_norm_1`, `multi_head_attention_layer`,
  `query_layer`, `tril`, `language_model_out_linear_layer`, and an embedding of
  `max_token_value + 1` rows against an output layer of `max_token_value`.
- `ScifiModel`: `scifi-demo/model.py`: the chapter's names (`ln1`, `mha`, `Wq`, `mask`,
  `model_out_linear_layer`), one vocabulary for both ends.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def position_table(context_length: int, d_model: int) -> torch.Tensor:
    table = torch.zeros(context_length, d_model)
    position = torch.arange(context_length, dtype=torch.float).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies)
    return table


class _Head(nn.Module):
    def __init__(self, names: dict, d_model: int, head_size: int, context_length: int):
        super().__init__()
        self.names = names
        for role in ("query", "key", "value"):
            setattr(self, names[role], nn.Linear(d_model, head_size, bias=False))
        self.register_buffer(names["mask"], torch.tril(torch.ones(context_length, context_length)))

    def forward(self, x):
        T = x.shape[1]
        q, k, v = (getattr(self, self.names[role])(x) for role in ("query", "key", "value"))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        mask = getattr(self, self.names["mask"])[:T, :T]
        return torch.softmax(scores.masked_fill(mask == 0, float("-inf")), dim=-1) @ v


class _Attention(nn.Module):
    def __init__(self, names, d_model, num_heads, context_length):
        super().__init__()
        self.heads = nn.ModuleList(_Head(names, d_model, d_model // num_heads, context_length)
                                   for _ in range(num_heads))
        self.projection_layer = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.projection_layer(torch.cat([head(x) for head in self.heads], dim=-1))


class _FeedForward(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        return self.ffn(x)


class _Block(nn.Module):
    def __init__(self, names, d_model, num_heads, context_length):
        super().__init__()
        self.names = names
        setattr(self, names["ln1"], nn.LayerNorm(d_model))
        setattr(self, names["ln2"], nn.LayerNorm(d_model))
        setattr(self, names["attention"], _Attention(names, d_model, num_heads, context_length))
        setattr(self, names["feed_forward"], _FeedForward(d_model))

    def forward(self, x):
        n = self.names
        x = x + getattr(self, n["attention"])(getattr(self, n["ln1"])(x))
        return x + getattr(self, n["feed_forward"])(getattr(self, n["ln2"])(x))


class _BookLikeModel(nn.Module):
    NAMES: dict = {}
    EXTRA_EMBEDDING_ROWS = 0

    def __init__(self, d_model, num_heads, num_blocks, context_length, max_token_value, seed=0, logit_scale=4.0):
        super().__init__()
        torch.manual_seed(seed)
        self.context_length = context_length
        self.token_embedding_lookup_table = nn.Embedding(max_token_value + self.EXTRA_EMBEDDING_ROWS, d_model)
        self.transformer_blocks = nn.Sequential(
            *[_Block(self.NAMES, d_model, num_heads, context_length) for _ in range(num_blocks)],
            nn.LayerNorm(d_model))
        setattr(self, self.NAMES["out"], nn.Linear(d_model, max_token_value))
        with torch.no_grad():  # trained models have decisive logits; PyTorch's init does not
            getattr(self, self.NAMES["out"]).weight.mul_(logit_scale)
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.normal_(1.0, 0.1)
                    module.bias.normal_(0.0, 0.1)
        self.positions = position_table(context_length, d_model)
        self.eval()

    @torch.no_grad()
    def forward(self, idx):
        x = self.token_embedding_lookup_table(idx) + self.positions[: idx.shape[1]]
        return getattr(self, self.NAMES["out"])(self.transformer_blocks(x))

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """The repository's step: crop to the last `context_length` ids, the last position's logits."""
        return self(torch.tensor([ids[-self.context_length:]]))[0, -1]

    def greedy(self, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
        """The repository's `generate` loop with argmax for its draw: the tokens and each step's top-two gap."""
        ids, gaps = list(prompt), []
        for _ in range(n):
            logits = self.next_logits(ids)
            top = torch.topk(logits, 2).values
            gaps.append(float(top[0] - top[1]))
            ids.append(int(logits.argmax()))
        return ids[len(prompt):], gaps


class RepositoryModel(_BookLikeModel):
    NAMES = {"ln1": "layer_norm_1", "ln2": "layer_norm_2", "attention": "multi_head_attention_layer",
             "feed_forward": "feed_forward_layer", "query": "query_layer", "key": "key_layer",
             "value": "value_layer", "mask": "tril", "out": "language_model_out_linear_layer"}
    EXTRA_EMBEDDING_ROWS = 1


class ScifiModel(_BookLikeModel):
    NAMES = {"ln1": "ln1", "ln2": "ln2", "attention": "mha", "feed_forward": "ffn", "query": "Wq", "key": "Wk",
             "value": "Wv", "mask": "mask", "out": "model_out_linear_layer"}
