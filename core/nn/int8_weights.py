"""8-bit weights (`--weights int8`): every linear's weights rounded to int8 with one scale per output
channel, at load. Not exact: a model with them is another model, and everything that shows a result
says so (`WEIGHTS_LABEL`).

The product is fbgemm's dynamic int8 linear: it reads one byte a weight, and rounds the input row to
8 bits as well (one scale for the row, from its range), accumulating in int32. Both roundings are the
cost `tfchat score --weights int8` measures against the float model (loss, perplexity, mean KL).
Per output channel, not per group of 32 as llama.cpp's Q8_0: fbgemm has no grouped kernel, and one
scale per channel of 768-3072 weights costs little here (the score says how much).
"""
from __future__ import annotations

import warnings

import torch

# The values `--weights` takes: the checkpoint's own numbers, or 8-bit ones.
WEIGHT_CHOICES = ("exact", "int8")
# How a result made with 8-bit weights is labelled (status line, inspector, history, compare columns).
WEIGHTS_LABEL = "int8 weights, not exact"


def packed_int8(weight: torch.Tensor, bias: torch.Tensor | None):
    """fbgemm's packed int8 form of `weight` [N, K] (float32), one symmetric scale per row; None on a
    build without fbgemm's quantized engine (not x86)."""
    try:
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated: not on the user's screen
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(quantized, bias)
        torch.ops.quantized.linear_dynamic(torch.zeros(1, weight.shape[1]), packed, True)
        return packed
    except (RuntimeError, AttributeError):
        return None
