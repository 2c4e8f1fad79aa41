"""The output layer, the largest read of every step, in the fastest form the weights allow here.

- Weights float16 holds exactly (the shipped model), or `--weights int8`: fbgemm's packed products
  (`core.nn.block_products.Product`), two bytes a weight or one.
- float32 on the CPU: the weight transposed, [D, V], which `addmm` streams faster than `linear`
  does [V, D] for one row (1.3-1.6x); several rows use weight @ rows.T instead (4 rows cost about
  what 1 does that way, against 5x with the transposed form).
- Elsewhere (CUDA, MPS): `linear`.

With a helper thread each half of the vocabulary is computed on its own thread (the same dot
products, so the same logits). When the step runs on two intra-op threads instead
(`core.system.second_core`), the halves run one after the other, each split over both threads.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tfchat.core.nn.block_products import Product
from tfchat.core.system.helper_thread import HelperThread


class OutputLayer:
    """hidden [D] -> logits [V], or rows [B, D] -> [B, V]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, device: torch.device,
                 helper: HelperThread | None, packable: bool, weights: str = "exact"):
        self.device, self.helper = device, helper
        self.vocab_size = weight.shape[0]
        self.weight, self.bias = weight, bias  # float32, resident: the non-CPU form reads them
        self.weight_bytes, self.kernel = 4, f"float32 ({device.type})"
        self._halves = [slice(0, self.vocab_size)] if helper is None else [
            slice(0, self.vocab_size // 2), slice(self.vocab_size // 2, self.vocab_size)]
        self._forms: list = []
        if device.type != "cpu":
            return
        if packable or weights == "int8":
            stored = weight.half() if packable and weights != "int8" else weight  # float16 holds it exactly
            products = [Product(stored[rows], bias[rows], device, weights=weights) for rows in self._halves]
            if products[0].packed is not None:
                # Traced: a call through `torch.ops` holds the GIL, a trace's run does not, and the helper
                # thread's half must run beside this thread's.
                example = torch.zeros(1, weight.shape[1], device=device)
                self._forms = [torch.jit.trace(product, example, check_trace=False) for product in products]
                self.weight_bytes, self.kernel = products[0].weight_bytes, products[0].kernel
                return
        self.kernel = "float32 (MKL, transposed)"
        self._forms = [_Float32Half(weight[rows], bias[rows]) for rows in self._halves]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self(x.unsqueeze(0))[0]
        if not self._forms:
            return F.linear(x, self.weight, self.bias)
        if len(self._forms) == 1:
            return self._forms[0](x)
        logits = torch.empty(x.shape[0], self.vocab_size, device=self.device)
        first, second = (lambda: logits[:, self._halves[0]].copy_(self._forms[0](x)),
                         lambda: logits[:, self._halves[1]].copy_(self._forms[1](x)))
        if torch.get_num_threads() > 1:  # each half over every intra-op thread
            first()
            second()
            return logits

        def second_on_helper() -> None:
            with torch.inference_mode():  # thread-local: the helper thread needs it too
                second()

        self.helper.pair(first, second_on_helper)
        return logits

    def nbytes(self) -> int:
        """Bytes the layer reads per step, in the form it is computed, bias included."""
        return self.weight.numel() * self.weight_bytes + self.bias.numel() * 4


class _Float32Half:
    """bias + rows @ weight.T in the layout that is fastest for the number of rows (see above)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self.weight_t, self.bias_row = weight.t().contiguous(), bias.unsqueeze(0)
        self.weight, self.bias_column = weight, bias.unsqueeze(1)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.shape[0] == 1:
            return torch.addmm(self.bias_row, rows, self.weight_t)
        return torch.addmm(self.bias_column, self.weight, rows.t()).t()
