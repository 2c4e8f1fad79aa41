"""What the fast model keeps per layer: its fused weights, and the keys and values computed so far."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tfchat.core.nn.block_products import Product
from tfchat.core.nn.model_config import ModelConfig


@dataclass
class BlockWeights:
    ln1_weight: torch.Tensor
    ln1_bias: torch.Tensor
    qkv: Product  # [3D, D]: every head's Wq, then Wk, then Wv, stacked
    proj: Product
    ln2_weight: torch.Tensor
    ln2_bias: torch.Tensor
    ffn_in: Product
    ffn_out: Product

    def nbytes(self) -> int:
        """Bytes a step reads of this block's weights."""
        norms = (self.ln1_weight, self.ln1_bias, self.ln2_weight, self.ln2_bias)
        return (sum(t.numel() * t.element_size() for t in norms)
                + sum(p.nbytes() for p in (self.qkv, self.proj, self.ffn_in, self.ffn_out)))


class KVCache:
    """Keys and values of the positions computed so far, preallocated to the window."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype, rows: int = 1):
        shape = (config.num_blocks, rows, config.num_heads, config.context_length, config.head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions 0..length-1 are filled
        self.decode_graph = None  # on CUDA, the decode step captured for these tensors (core.nn.cuda_graph)

    def reset(self) -> None:
        self.length = 0

    def row(self, index: int) -> "KVCache":
        """One row of a batched cache as a one-row cache: views, so what is written lands in this cache."""
        return self.rows(index, index + 1)

    def rows(self, start: int, stop: int) -> "KVCache":
        """Rows start..stop-1 of a batched cache, as views."""
        view = KVCache.__new__(KVCache)
        view.keys, view.values = self.keys[:, start:stop], self.values[:, start:stop]
        view.length, view.decode_graph = 0, None
        return view
