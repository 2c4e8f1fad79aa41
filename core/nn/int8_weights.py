"""8-bit weights (`--weights int8`): every linear's weights rounded to int8 with one scale per output
channel, at load. Not exact: a model with them is another model, and everything that shows a result
says so (`core.settings.weights_choice.weights_label`).

The product is fbgemm's dynamic int8 linear: it reads one byte a weight, and rounds the input row to
8 bits as well (one scale for the row, from its range), accumulating in int32. Both roundings are the
cost `tfchat score --weights int8` measures against the float model (loss, perplexity, mean KL).
Per output channel, not per group of 32 as llama.cpp's Q8_0: fbgemm has no grouped kernel, and one
scale per channel of 768-3072 weights costs little here (the score says how much).
"""
from __future__ import annotations

import warnings

import torch

from tfchat.core.errors import TfchatError
from tfchat.core.settings.weights_choice import WEIGHT_CHOICES


def check_weights(weights: str, device) -> str:
    """`--weights` as given, refused in one line where it cannot run."""
    if weights not in WEIGHT_CHOICES:
        raise TfchatError(f"--weights {str(weights)[:20]!r}: choose one of {', '.join(WEIGHT_CHOICES)}")
    if weights == "int8" and device.type != "cpu":
        raise TfchatError(f"--weights int8 runs on the CPU only (fbgemm); this model is on {device.type}")
    return weights


def packed_int8(weight: torch.Tensor):
    """fbgemm's packed int8 form of `weight` [N, K] (float32), one symmetric scale per row, and the
    rounded weight's row sums (float32, [N]: see `int8_product`); None on a build without fbgemm's
    quantized engine (not x86)."""
    try:
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated: not on the user's screen
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(quantized, None)
        torch.ops.quantized.linear_dynamic(torch.zeros(1, weight.shape[1]), packed, True)
    except (RuntimeError, AttributeError):
        return None
    row_sums = (quantized.int_repr().double() * scale[:, None]).sum(dim=1).float()
    return packed, row_sums


def int8_product(x: torch.Tensor, packed, row_sums: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [..., K] -> [..., N] through the packed int8 weights.

    fbgemm rounds its input to 8 bits with one scale for the whole input: several rows computed
    together (a prompt's fill, a verify, serve's batch) would share it, and a row's numbers would
    depend on its neighbours. So each row is first mapped onto exactly [0, 1] (its minimum to 0,
    its maximum to 1: x / x is exactly 1), which every row then shares, and mapped back after:
    W x = spread * (W u) + low * (W 1). A row gets the same numbers alone or among others.
    """
    low, high = torch.aminmax(x, dim=-1, keepdim=True)
    spread = (high - low).clamp_min(1e-30)  # a constant row maps to 0, which any scale rounds alike
    unit = torch.ops.quantized.linear_dynamic((x - low) / spread, packed, True)
    return torch.addcmul(torch.addcmul(bias, low, row_sums), unit, spread)
