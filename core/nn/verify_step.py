"""Several tokens after the cached positions in one pass, each row with its own logits: a draft's check.

A verify feeds the last known token and k drafted ones at positions s..s+k, writes their keys and
values into the cache, and returns k+1 rows of logits: row j is what the one-token step
(`FastModel._decode_one`) would give after the first j+1 of them. The weights are read once for all
rows, which is the point: a decode step is bound by reading the weights.

To give the one-token step's numbers, each row is computed as that step computes its one row: the
rows go through the products as a batch (row-independent: a float16-weight product gives every row
bit for bit what it gives alone; a float32 one moves the last bits, within 1e-6), and each row
attends as the batch dimension of `scaled_dot_product_attention`, over the whole cache with the
positions after its own masked, exactly as the one-token step attends.
"""
from __future__ import annotations

import torch

from tfchat.core.nn.kv_cache import KVCache


class VerifyStep:
    """One model's verify pass, traced once per number of rows (as the one-token step is, on the CPU)."""

    def __init__(self, model):
        self._model = model
        self._traced: dict[int, object] = {}

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [T, V] for `ids` (T tokens, on the device) at positions cache.length.. ; the cache then
        holds them all (`cache.length` += T). A caller that keeps fewer rows sets `cache.length` back:
        the positions after it are masked until they are written again."""
        model, rows = self._model, ids.shape[0]
        start = cache.length
        assert start > 0 and start + rows <= model.config.context_length, "a verify continues a filled window"
        first = torch.tensor([start], device=model.device)
        cache.length += rows
        if model.device.type != "cpu":
            return model.output_layer(self._eager(ids, first, cache.keys, cache.values))
        traced = self._traced.get(rows)
        if traced is None:
            traced = self._traced[rows] = torch.jit.trace(self._eager, (ids, first, cache.keys, cache.values),
                                                          check_trace=False)
        return model.output_layer(traced(ids, first, cache.keys, cache.values))

    def _eager(self, ids, first, keys, values):
        model = self._model
        rows = ids.shape[0]
        positions = first + torch.arange(rows, device=ids.device)
        x = (model.embedding[ids] + model.positions[positions]).unsqueeze(1)  # (T, 1, D): rows as a batch
        # (T, 1, 1, C): row j sees positions 0..first+j, as the one-token step at that position does
        mask = torch.where(model.cache_positions.view(1, -1) <= positions.view(-1, 1), 0.0, float("-inf"))
        mask = mask.view(rows, 1, 1, -1)
        for layer, w in enumerate(model.blocks):
            q, k, v = model.project_qkv(x, w)  # each (T, H, 1, hs)
            keys[layer].index_copy_(2, positions, k.permute(2, 1, 0, 3))  # into (1, H, C, hs)
            values[layer].index_copy_(2, positions, v.permute(2, 1, 0, 3))
            every_key = keys[layer].expand(rows, -1, -1, -1)
            every_value = values[layer].expand(rows, -1, -1, -1)
            x = model.after_attention(x, model.attend(q, every_key, every_value, mask), w)
        return model.final_norm(x[:, -1])
