"""Several tokens after the cached positions in one pass, each row with its own logits: a draft's check.

A verify feeds the last known token and k drafted ones at positions s..s+k, writes their keys and
values into the cache, and returns k+1 rows of logits: row j is what the one-token step
(`FastModel.decode_hidden`) would give after the first j+1 of them. The weights are read once for all
rows, which is the point: a decode step is bound by reading the weights.

To give the one-token step's numbers, each row is computed as that step computes its one row: the
rows go through the products as a batch (row-independent: a float16-weight product gives every row
bit for bit what it gives alone; a float32 one moves the last bits, within 1e-6), and each row
attends as the batch dimension of `scaled_dot_product_attention`, over the whole cache with the
positions after its own masked, exactly as the one-token step attends.

Run eagerly: unlike the one-token step, a trace gains nothing measurable here (the shipped model,
one thread: 1.84 ms eager against 1.89 traced for 5 rows), and each number of rows would need its own,
at 55 ms apiece, which a short generation never earns back.
"""
from __future__ import annotations

import torch

from tfchat.core.nn.kv_cache import KVCache


@torch.inference_mode()
def verify_rows(model, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Logits [T, V] for `ids` (T tokens, on the device) at positions cache.length.. ; the cache then holds
    them all (`cache.length` += T). A caller that keeps fewer rows sets `cache.length` back: the positions
    after it are masked until they are written again."""
    rows, start = ids.shape[0], cache.length
    assert start > 0 and start + rows <= model.config.context_length, "a verify continues a filled window"
    cache.length += rows
    positions = start + torch.arange(rows, device=ids.device)
    x = (model.embedding[ids] + model.positions[positions]).unsqueeze(1)  # (T, 1, D): rows as a batch
    # (T, 1, 1, C): row j sees positions 0..start+j, as the one-token step at that position does
    mask = torch.where(model.cache_positions.view(1, -1) <= positions.view(-1, 1), 0.0, float("-inf"))
    mask = mask.view(rows, 1, 1, -1)
    for layer, w in enumerate(model.blocks):
        q, k, v = model.project_qkv(x, w)  # each (T, H, 1, hs)
        keys, values = cache.keys[layer], cache.values[layer]  # (1, H, C, hs)
        keys.index_copy_(2, positions, k.permute(2, 1, 0, 3))
        values.index_copy_(2, positions, v.permute(2, 1, 0, 3))
        attention = model.attend(q, keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), mask)
        x = model.after_attention(x, attention, w)
    return model.output_layer(model.final_norm(x[:, -1]))
