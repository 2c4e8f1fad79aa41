"""A block's pieces of arithmetic: one layer's matrix product (x @ Wᵀ + b) in the form that reads
the fewest bytes exactly, and the feed-forward's activation.

Decoding reads every weight once a token, so the bytes read are the time. Weights stored in
float16 (a `.half()` checkpoint, the shipped model) are multiplied by fbgemm's float16-weight
product: it reads two bytes a weight, converts each to float32 exactly and accumulates in float32,
so it is the upcast product with its sums in another order (within 1e-5 of it on the block
shapes of a 140M model), at 1.5x its speed here. Weights stored in bfloat16 take the same form when
every one of them converts to float16 and back unchanged (bfloat16 has fewer mantissa bits, so only
values beyond float16's range, or too small for its precision, fail): then the float16 copy holds
exactly the stored values. Trained weights usually include a few values below 1e-5 that float16
cannot hold exactly, so most bfloat16 checkpoints are multiplied in float32, as is every other case.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tfchat.core.errors import TfchatError
from tfchat.core.nn.int8_weights import int8_product, packed_int8


# A product of many rows (a prompt's fill, a window recomputed past it) is compute-bound: above this
# many multiply-adds the helper thread takes half of its output features (the same dot products, so
# bit-identical; 1.2-1.5x here). Below it the hand-over costs more than it saves (and a decode step's
# one row never comes near it).
SPLIT_MACS = 40_000_000


class Product(nn.Module):
    """x [..., K] -> [..., N]: `weight` [N, K] as stored, `bias` [N] or None; held on `device`. With a
    helper thread (`core.system.helper_thread`), large float32 products are shared with it.

    A module, so that a traced decode step reaches fbgemm's packed weights (script objects a trace
    only follows through registered modules). `kernel` names the path taken, for `bench`. Every path
    splits its work over torch's intra-op threads by output feature, so one thread or two give the
    same bits for the packed forms. `weights="int8"` quantizes (`core.nn.int8_weights`): not exact.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, device: torch.device, helper=None,
                 weights: str = "exact"):
        super().__init__()
        self.helper = helper
        self.shape = tuple(weight.shape)
        self.weight = weight.to(device=device, dtype=torch.float32).contiguous()
        self.bias = None if bias is None else bias.to(device=device, dtype=torch.float32).contiguous()
        self.packed = None
        self.weight_bytes = 4  # a weight as the product reads it
        self.kernel = "float32 (MKL)" if device.type == "cpu" else f"float32 ({device.type})"
        if device.type == "cpu" and weights == "int8":
            packed = packed_int8(self.weight)
            if packed is None:
                raise TfchatError("8-bit weights need fbgemm's quantized engine, which this build of torch lacks")
            self.packed, self.row_sums = packed
            self.bias = self.bias if self.bias is not None else torch.zeros(self.shape[0], device=device)
            self.weight, self.weight_bytes, self.kernel = None, 1, "int8 per channel (fbgemm)"
            return
        if device.type == "cpu" and exact_in_float16(weight):
            self.packed = _packed_fp16(self.weight, self.bias)
            if self.packed is not None:
                self.weight, self.weight_bytes, self.kernel = None, 2, "float16 weights (fbgemm)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight_bytes == 2:
            return torch.ops.quantized.linear_dynamic_fp16(x, self.packed)
        if self.weight_bytes == 1:
            return int8_product(x, self.packed, self.row_sums, self.bias)
        # A trace records one thread's ops (and sizes read there would become constants): never split in one.
        if (self.helper is not None and not torch.jit.is_tracing() and self.shape[0] >= 2
                and x.numel() * self.shape[0] >= SPLIT_MACS and torch.get_num_threads() == 1):
            return self._shared(x)
        return F.linear(x, self.weight, self.bias)

    def _shared(self, x: torch.Tensor) -> torch.Tensor:
        """Half of the output features here, half on the helper thread (or here, if it has no core)."""
        half = self.shape[0] // 2
        bias = (None, None) if self.bias is None else (self.bias[:half], self.bias[half:])
        parts = [None, None]

        def mine() -> None:
            parts[0] = F.linear(x, self.weight[:half], bias[0])

        def theirs() -> None:
            with torch.inference_mode(torch.is_inference_mode_enabled()):  # thread-local: carry the caller's
                parts[1] = F.linear(x, self.weight[half:], bias[1])

        self.helper.pair(mine, theirs)
        return torch.cat(parts, dim=-1)

    def nbytes(self) -> int:
        """Bytes of weights a product reads (float16 weights: two a value, int8: one), bias included."""
        bias = 0 if self.bias is None else self.bias.numel() * 4
        scales = self.shape[0] * 4 if self.weight_bytes == 1 else 0
        return self.shape[0] * self.shape[1] * self.weight_bytes + bias + scales


def exact_in_float16(weight: torch.Tensor) -> bool:
    """Whether every stored value is a float16 value: float16 weights, or bfloat16 ones that convert
    there and back unchanged (none beyond float16's range, none lost below it)."""
    if weight.dtype == torch.float16:
        return True
    if weight.dtype != torch.bfloat16:
        return False
    return torch.equal(weight.to(torch.float16).to(torch.bfloat16), weight)


def _packed_fp16(weight: torch.Tensor, bias: torch.Tensor | None):
    """fbgemm's packed float16 form of `weight` (and its bias), or None on a build without fbgemm (not
    x86). The product converts each weight to float32 exactly and sums in float32."""
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(weight, bias)
        torch.ops.quantized.linear_dynamic_fp16(torch.zeros(1, weight.shape[1]), packed)
        return packed
    except (RuntimeError, AttributeError):
        return None


def activation_function(name: str):
    """The feed-forward's activation by its transformers name; gelu_new is GELU's tanh approximation."""
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    return lambda x: F.gelu(x, approximate="tanh")
