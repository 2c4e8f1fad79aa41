"""The book's model (chapter 18), module for module, so its state-dict keys match.

Used to train checkpoints in the book's layout (`tfchat train`) and as the
baseline that `tfchat bench` measures the engine against. Inference in tfchat
goes through `core.nn.fast_model`, which loads the same weights rearranged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tfchat.core.nn.model_config import ModelConfig


def sinusoidal_positions(context_length: int, d_model: int) -> torch.Tensor:
    """The book's position table, computed the same way so float bits agree."""
    table = torch.zeros(context_length, d_model)
    position = torch.arange(0, context_length, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


class FeedForward(nn.Module):
    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.ffn = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.ReLU(),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.ffn(x)


class Attention(nn.Module):
    def __init__(self, d_model: int, head_size: int, context_length: int, dropout: float):
        super().__init__()
        self.Wq = nn.Linear(d_model, head_size, bias=False)
        self.Wk = nn.Linear(d_model, head_size, bias=False)
        self.Wv = nn.Linear(d_model, head_size, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_length, context_length)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        _, T, _ = x.shape
        q, k, v = self.Wq(x), self.Wk(x), self.Wv(x)
        weights = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        weights = weights.masked_fill(self.mask[:T, :T] == 0, float("-inf"))
        weights = self.dropout(F.softmax(weights, dim=-1))
        return weights @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, context_length: int, dropout: float):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList(
            [Attention(d_model, head_size, context_length, dropout) for _ in range(num_heads)]
        )
        self.projection_layer = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([head(x) for head in self.heads], dim=-1)
        return self.dropout(self.projection_layer(out))


class TransformerBlock(nn.Module):
    def __init__(self, d_model: int, num_heads: int, context_length: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mha = MultiHeadAttention(d_model, num_heads, context_length, dropout)
        self.ffn = FeedForward(d_model, dropout)

    def forward(self, x):
        x = x + self.mha(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class BookModel(nn.Module):
    def __init__(self, config: ModelConfig, dropout: float = 0.0):
        super().__init__()
        self.config = config
        D, C = config.d_model, config.context_length
        self.token_embedding_lookup_table = nn.Embedding(config.embedding_rows, D)
        self.transformer_blocks = nn.Sequential(
            *[TransformerBlock(D, config.num_heads, C, dropout) for _ in range(config.num_blocks)],
            nn.LayerNorm(D),
        )
        self.model_out_linear_layer = nn.Linear(D, config.vocab_size)
        # Not a parameter or a saved buffer: the book rebuilds it every forward.
        self._positions = sinusoidal_positions(C, D)

    def forward(self, idx, targets=None):
        _, T = idx.shape
        positions = self._positions[:T].to(idx.device)
        x = self.token_embedding_lookup_table(idx) + positions
        logits = self.model_out_linear_layer(self.transformer_blocks(x))
        if targets is None:
            return logits, None
        B, T, V = logits.shape
        loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None):
        """The book's loop: whole window recomputed, every position's logits, per token."""
        C = self.config.context_length
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -C:])
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
