"""Heads widened with zeros, so that attention kernels built for a few head sizes take the book's small ones.

vLLM's attention kernels (and most GPU kernels) exist for a fixed set of head sizes; the book's configs use
heads of 20 and 16, which they refuse. An exported folder therefore stores each head padded with zeros to
the next size in `KERNEL_HEAD_SIZES`: zero rows after each head's query, key and value rows, and zero
columns in the output projection for them. A zero query or key entry adds nothing to a dot product, a zero
value entry gives a zero output entry, and the projection ignores it, so the model computes what it did,
provided the softmax scale stays 1/sqrt(the real head size): the folder's modeling file passes it.
"""
from __future__ import annotations

import torch

# The head sizes vLLM 0.32's CPU attention takes (its GPU backends take these too).
KERNEL_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def padded_head_size(head_size: int) -> int:
    """The smallest kernel head size that holds `head_size`; the head size itself past the largest."""
    return next((size for size in KERNEL_HEAD_SIZES if size >= head_size), head_size)


def pad_qkv(qkv: torch.Tensor, heads: int, head_size: int, padded: int) -> torch.Tensor:
    """[3 * heads * head_size, D] (queries, keys, values, each in head order) -> [3 * heads * padded, D]."""
    width = qkv.shape[1]
    out = qkv.new_zeros(3, heads, padded, width)
    out[:, :, :head_size] = qkv.reshape(3, heads, head_size, width)
    return out.reshape(3 * heads * padded, width)


def pad_projection(weight: torch.Tensor, heads: int, head_size: int, padded: int) -> torch.Tensor:
    """The output projection [D, heads * head_size] -> [D, heads * padded], zero columns for the padding."""
    rows = weight.shape[0]
    out = weight.new_zeros(rows, heads, padded)
    out[:, :, :head_size] = weight.reshape(rows, heads, head_size)
    return out.reshape(rows, heads * padded)


def unpad_qkv(qkv: torch.Tensor, heads: int, head_size: int, padded: int) -> torch.Tensor | None:
    """`pad_qkv` undone; None when the padding is not all zeros (the folder would not be the model)."""
    width = qkv.shape[1]
    split = qkv.reshape(3, heads, padded, width)
    if torch.count_nonzero(split[:, :, head_size:]):
        return None
    return split[:, :, :head_size].reshape(3 * heads * head_size, width)


def unpad_projection(weight: torch.Tensor, heads: int, head_size: int, padded: int) -> torch.Tensor | None:
    """`pad_projection` undone; None when the padding columns are not all zeros."""
    rows = weight.shape[0]
    split = weight.reshape(rows, heads, padded)
    if torch.count_nonzero(split[:, :, head_size:]):
        return None
    return split[:, :, :head_size].reshape(rows, heads * head_size)
