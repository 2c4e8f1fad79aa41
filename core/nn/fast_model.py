"""The book's model rearranged for inference: fused weights, a KV cache, last-position logits.

Numerically it is the book's forward pass; the differences are only in how the
float work is grouped (all heads of a layer in one matrix, attention through
`scaled_dot_product_attention`), which moves the last bits and nothing else.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from tfchat.core.nn.block_products import Product, activation_function, exact_in_float16
from tfchat.core.nn.book_model import sinusoidal_positions
from tfchat.core.nn.cuda_graph import DecodeGraph
from tfchat.core.nn.kv_cache import BlockWeights, KVCache
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.nn.output_layer import OutputLayer
from tfchat.core.nn.trace_ahead import StepModule, TraceAhead
from tfchat.core.system.helper_thread import HelperThread
from tfchat.core.system.second_core import SecondCore, fixed_readers

TWO_READERS_MIN_BYTES = 16 * 2**20  # blocks reading less a step stay on one thread (see `second_core` below)


class FastModel:
    """Inference-only view of a book checkpoint, weights resident on one device."""

    def __init__(self, config: ModelConfig, state_dict: dict[str, torch.Tensor], device: torch.device,
                 helper: HelperThread | None = None, weights: str = "exact"):
        self.config = config
        self.device = device
        self.helper = helper  # takes half of the output layer, the largest read of a step
        self.weights = weights  # "exact", or "int8" (`core.nn.int8_weights`: not exact)
        D, H = config.d_model, config.num_heads

        def take(key: str) -> torch.Tensor:
            return state_dict[key].to(device=device, dtype=torch.float32).contiguous()

        self.embedding = take("token_embedding_lookup_table.weight")
        learned = state_dict.get("position_embedding.weight")  # GPT-2's trained table; the book's is computed
        self.positions = (take("position_embedding.weight") if learned is not None
                          else sinusoidal_positions(config.context_length, D).to(device))
        self.activation = activation_function(config.activation)
        self.blocks: list[BlockWeights] = []
        for i in range(config.num_blocks):
            p = f"transformer_blocks.{i}."
            heads = [f"{p}mha.heads.{h}." for h in range(H)]
            qkv = torch.cat(
                [state_dict[h + w + ".weight"] for w in ("Wq", "Wk", "Wv") for h in heads], dim=0
            )

            def product(name: str) -> Product:
                return Product(state_dict[p + name + ".weight"], state_dict[p + name + ".bias"], device, helper,
                               weights)

            self.blocks.append(
                BlockWeights(
                    ln1_weight=take(p + "ln1.weight"),
                    ln1_bias=take(p + "ln1.bias"),
                    qkv=Product(qkv, state_dict.get(p + "mha.qkv_bias"), device, helper, weights),  # GPT-2: a bias
                    proj=product("mha.projection_layer"),
                    ln2_weight=take(p + "ln2.weight"),
                    ln2_bias=take(p + "ln2.bias"),
                    ffn_in=product("ffn.ffn.0"),
                    ffn_out=product("ffn.ffn.2"),
                )
            )
        final = f"transformer_blocks.{config.num_blocks}."
        self.final_ln_weight = take(final + "weight")
        self.final_ln_bias = take(final + "bias")
        self.out_weight = take("model_out_linear_layer.weight")
        self.out_bias = take("model_out_linear_layer.bias")
        self.output_layer = OutputLayer(self.out_weight, self.out_bias, device, helper,
                                        exact_in_float16(state_dict["model_out_linear_layer.weight"]), weights)
        # Every product, registered where a trace can reach fbgemm's packed weights through them.
        self._products = nn.ModuleList(p for block in self.blocks for p in (block.qkv, block.proj, block.ffn_in,
                                                                             block.ffn_out))
        # With a helper there is a second core: steps take it while it is idle (`core.system.second_core`),
        # where the blocks are worth two readers (a small model's steps are op overhead, and two threads
        # only add their handovers: the shipped model 175 against 285 tok/s).
        blocks_bytes = sum(block.nbytes() for block in self.blocks)
        self.second_core = SecondCore() if helper is not None and (
            blocks_bytes >= TWO_READERS_MIN_BYTES or fixed_readers() is not None) else None
        self._traced_fill = None  # made on the first step past the window
        self._traced_decode = None  # made on the first decode step, or ahead of it (trace_decode_ahead)
        self._traced_span = 0  # the attention span the trace last ran at
        self._trace_ahead = None
        self._unsteady_steps = 0  # steps whose time says nothing of the machine (see `_cpu_step`)
        self._traced_rows: dict[int, object] = {}  # batch size -> its traced decode step (`decode_rows`)
        self.cache_positions = torch.arange(config.context_length, device=device)
        self._causal_masks: dict[int, torch.Tensor] = {}  # rows -> the mask added to the scores; see below
        self._graph_pool = None  # CUDA only: the memory pool the decode graphs share

    def new_cache(self, rows: int = 1) -> KVCache:
        return KVCache(self.config, self.device, torch.float32, rows)

    def output_layer_bytes(self) -> int:
        """Bytes the output layer reads per step, in the form it is computed (float16 weights read 2 a value)."""
        return self.output_layer.nbytes()

    def kernels(self) -> dict[str, str]:
        """The path each part of a step takes here (`bench` says which)."""
        return {"blocks": self.blocks[0].qkv.kernel if self.blocks else "none", "output layer": self.output_layer.kernel}

    def resident_bytes(self) -> int:
        """Bytes of weights held on the device: the float32 tensors, plus the output layer's computed form."""
        tensors = [self.embedding, self.positions, self.final_ln_weight, self.final_ln_bias, self.out_weight,
                   self.out_bias]
        copy = self.output_layer_bytes() if self.device.type == "cpu" else 0  # packed or transposed
        return (sum(t.numel() * t.element_size() for t in tensors) + copy
                + sum(block.nbytes() for block in self.blocks))

    def weight_bytes_per_token(self) -> int:
        """Bytes of weights one decode step must read: all but the embedding table, plus one row."""
        tensors = [self.final_ln_weight, self.final_ln_bias, self.embedding[0]]
        return (sum(t.numel() * t.element_size() for t in tensors) + sum(block.nbytes() for block in self.blocks)
                + self.output_layer_bytes())

    @torch.inference_mode()
    def last_logits(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits [V] of the next token after `ids` (1-D, on the device).

        With a cache, `ids` continue the cached positions (a prefill from an empty
        cache, or one new token); without one, `ids` is a whole window at positions
        0..T-1, which is what the book computes once the text outgrows the window.
        """
        T, start = ids.shape[0], (cache.length if cache is not None else 0)
        assert start + T <= self.config.context_length, "the window overflows; the caller crops and recomputes"
        if T == 1 and start > 0 and self.device.type == "cpu":
            return self._cpu_step(ids, cache)
        if T == 1 and start > 0 and self.device.type == "cuda":
            return self._graphed_step(ids, cache)
        x = self._embed(ids, start)
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            x = self._block(x, block, layer, cache, start, only_last_row=(layer == last))
        if cache is not None:
            cache.length = start + T
        return self.output_layer(self.final_norm(x[0, -1]))

    def _cpu_step(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One decode step on one intra-op thread (and the helper), or on two while the second core is
        idle; the caller's own thread count is left as it was. A caller that chose more threads keeps them."""
        if self.second_core is None or torch.get_num_threads() != 1:
            return self.output_layer(self.decode_hidden(ids, cache))
        readers = self.second_core.readers()
        started = time.perf_counter()
        with _intra_op_threads(readers):
            logits = self.output_layer(self.decode_hidden(ids, cache))
        if self._unsteady_steps:
            self._unsteady_steps -= 1
        else:
            self.second_core.record(readers, time.perf_counter() - started)
        return logits

    def reading_threads(self):
        """A pass besides the one-token step (a drafted tokens' verify) on as many intra-op threads as
        the steps take now: on one while the steps have two, it would cost twice its share."""
        if self.second_core is None or torch.get_num_threads() != 1:
            return _intra_op_threads(1)
        return _intra_op_threads(self.second_core.current())

    def decode_hidden(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One token after the cached positions, through every block and the final LayerNorm.

        A decode step repeats the same ops, so it runs as a TorchScript trace: a
        fraction of the per-op cost, and without the GIL. Attention reads a span of
        the cache (a view, so the step's keys and values land in the cache) and masks
        the positions not filled yet (their weight is exactly 0). With a long window
        the span grows in steps (`attention_span`): a GPT-2's first 128 positions
        read an eighth of the keys and values the whole 1024 hold. The span is the
        view's length, so one trace serves every span.
        """
        position = torch.tensor([cache.length], device=self.device)
        span = self.attention_span(cache.length)
        keys, values = cache.keys[:, :, :, :span], cache.values[:, :, :, :span]
        cache.length += 1
        if self._traced_decode is None:
            if self._trace_ahead is not None:  # being made on another thread: the same ops, eagerly, meanwhile
                self._traced_decode = self._trace_ahead.ready()
                if self._traced_decode is None:
                    self._unsteady_steps = 1
                    return self._decode_one_eager(ids, position, keys, values)
            else:
                self._traced_decode = self._trace(self._decode_one_eager, (ids, position, keys, values))
            self._traced_span = span
        if span != self._traced_span:  # the executor's first runs at a new length are slow ones
            self._traced_span, self._unsteady_steps = span, 2
        return self._traced_decode(ids, position, keys, values)

    def attention_span(self, position: int) -> int:
        """Cached positions a one-token step at `position` attends over: the window, or for windows of
        512 and more, the first of an eighth, a quarter or half of it that holds the position."""
        C = self.config.context_length
        if C >= 512:
            for span in (C // 8, C // 4, C // 2):
                if position < span:
                    return span
        return C

    def trace_decode_ahead(self) -> None:
        """Start tracing the decode step on another thread (`core.nn.trace_ahead`), on a scratch cache."""
        scratch, one = self.new_cache(), torch.zeros(1, dtype=torch.long, device=self.device)
        span = self.attention_span(0)
        self._trace_ahead = TraceAhead(StepModule(self._decode_one_eager, self._products),
                                       (one, one, scratch.keys[:, :, :, :span], scratch.values[:, :, :, :span]))

    def _trace(self, function, example_inputs):
        """A TorchScript trace of `function`, which must not warn: no filter here, as `catch_warnings` is
        process-wide and two threads tracing would undo each other's (the tests make a TracerWarning an error)."""
        return torch.jit.trace(StepModule(function, self._products), example_inputs, check_trace=False)

    def _graphed_step(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """On CUDA, the same decode step and the output layer as one graph replay (`core.nn.cuda_graph`)."""
        position = cache.length
        cache.length += 1
        if cache.decode_graph is None:
            if self._graph_pool is None:
                self._graph_pool = torch.cuda.graph_pool_handle()  # one memory pool for every cache's graph

            def step(ids, position, keys, values):
                return self.output_layer(self._decode_one_eager(ids, position, keys, values))

            cache.decode_graph = DecodeGraph(step, ids, position, cache.keys, cache.values, self._graph_pool)
        return cache.decode_graph(ids, position)

    def _decode_one_eager(self, ids, position, keys, values):
        x = (self.embedding[ids] + self.positions[position]).unsqueeze(0)  # (1, 1, D); position is a tensor here
        span = keys.shape[3]  # the positions attended over (a view of the cache); those not filled yet are masked
        mask = torch.where(self.cache_positions[:span] <= position, 0.0, float("-inf")).view(1, -1)  # (1, span)
        for layer, w in enumerate(self.blocks):
            q, k, v = self.project_qkv(x, w)
            keys[layer].index_copy_(2, position, k)
            values[layer].index_copy_(2, position, v)
            x = self.after_attention(x, self.attend(q, keys[layer], values[layer], mask), w)
        return self.final_norm(x[0, -1])

    @torch.inference_mode()
    def decode_rows(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [B, V] for B rows in one pass: row b's token `ids[b]` at `positions[b]`, after the
        positions before it in row b of `cache` (B rows). Each row attends to its own positions only.

        The batched form of the one-token step (`decode_hidden`), traced the same way on the CPU,
        once per batch size; the output layer then reads its weights once for every row.
        """
        if self.device.type != "cpu":
            return self.output_layer(self._decode_rows_eager(ids, positions, cache.keys, cache.values))
        rows = ids.shape[0]
        traced = self._traced_rows.get(rows)
        if traced is None:
            traced = self._traced_rows[rows] = self._trace(self._decode_rows_eager,
                                                           (ids, positions, cache.keys, cache.values))
        return self.output_layer(traced(ids, positions, cache.keys, cache.values))

    def _decode_rows_eager(self, ids, positions, keys, values):
        rows = ids.shape[0]
        x = (self.embedding[ids] + self.positions[positions]).unsqueeze(1)  # (B, 1, D)
        # (B, 1, 1, C): row b sees its positions 0..positions[b]
        mask = torch.where(self.cache_positions.view(1, -1) <= positions.view(-1, 1), 0.0, float("-inf"))
        mask = mask.view(rows, 1, 1, -1)
        every_row = torch.arange(rows, device=ids.device)
        for layer, w in enumerate(self.blocks):
            q, k, v = self.project_qkv(x, w)  # each (B, H, 1, hs)
            keys[layer][every_row, :, positions] = k[:, :, 0]
            values[layer][every_row, :, positions] = v[:, :, 0]
            x = self.after_attention(x, self.attend(q, keys[layer], values[layer], mask), w)
        return self.final_norm(x[:, -1])

    @torch.inference_mode()
    def fill_cache(self, ids: torch.Tensor, cache: KVCache) -> None:
        """Only the keys and values of `ids` at positions 0..T-1, into `cache` (what it held is replaced).

        Past the window, the next step's window begins with C-1 tokens already known:
        their keys and values are all that step needs besides its last row. No logits
        here, and the last block stops once its keys and values are written.

        For those C-1 tokens (always the same shapes) it runs as a TorchScript trace:
        the same ops, run without holding the GIL, so a helper thread computing it
        does not slow down the thread that decodes.
        """
        if ids.shape[0] == self.config.context_length - 1 and ids.device.type == "cpu":
            if self._traced_fill is None:
                self._traced_fill = self._trace_fill(ids, cache)
            self._traced_fill(ids, cache.keys, cache.values)
            cache.length = ids.shape[0]
            return
        self._fill(ids, cache)

    def _trace_fill(self, ids: torch.Tensor, cache: KVCache):
        def fill(ids, keys, values):
            scratch = KVCache.__new__(KVCache)
            scratch.keys, scratch.values, scratch.length = keys, values, 0
            self._fill(ids, scratch)
            return keys

        return self._trace(fill, (ids, cache.keys, cache.values))

    def _fill(self, ids: torch.Tensor, cache: KVCache) -> None:
        T = ids.shape[0]
        x = self._embed(ids, 0)
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            if layer < last:
                x = self._block(x, block, layer, cache, 0, only_last_row=False)
            else:
                self._qkv(x, block, layer, cache, 0)
        cache.length = T

    def _embed(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """The first block's input for `ids` at positions start.. : (1, T, D)."""
        return (self.embedding[ids] + self.positions[start : start + ids.shape[0]]).unsqueeze(0)

    def final_norm(self, x):
        return F.layer_norm(x, (self.config.d_model,), self.final_ln_weight, self.final_ln_bias, self.config.layer_norm_eps)

    def attend(self, q, k, v, mask=None, causal: bool = False):  # at 1/sqrt(head size), or 1 (some GPT-2s)
        return F.scaled_dot_product_attention(q, k, v, mask, is_causal=causal, scale=self.config.attention_scale)

    def project_qkv(self, x, w: BlockWeights):
        """Queries, keys and values of x (B, T, D), each (B, H, T, hs)."""
        _, T, D = x.shape
        h = F.layer_norm(x, (D,), w.ln1_weight, w.ln1_bias, self.config.layer_norm_eps)
        qkv = w.qkv(h).view(x.shape[0], T, 3, self.config.num_heads, self.config.head_size)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # unbind, not tuple-unpacking: a trace warns about iterating

    def after_attention(self, x, attn, w: BlockWeights):
        """The rest of a block once attention (B, H, T, hs) is known: projection, then the feed-forward."""
        D = x.shape[-1]
        x = x + w.proj(attn.transpose(1, 2).reshape(x.shape[0], -1, D))
        h = F.layer_norm(x, (D,), w.ln2_weight, w.ln2_bias, self.config.layer_norm_eps)
        return x + w.ffn_out(self.activation(w.ffn_in(h)))

    def _qkv(self, x, w: BlockWeights, layer: int, cache: KVCache | None, start: int):
        """Queries, keys and values of x's rows (each (1, H, T, hs)); with a cache, the keys and values
        are written there at `start` and those returned span every cached position."""
        T = x.shape[1]
        q, k, v = self.project_qkv(x, w)
        if cache is not None:
            cache.keys[layer, :, :, start : start + T] = k
            cache.values[layer, :, :, start : start + T] = v
            k = cache.keys[layer, :, :, : start + T]
            v = cache.values[layer, :, :, : start + T]
        return q, k, v

    def _causal_attention(self, q, k, v):
        """Each row attending to itself and the rows before it: q, k, v (1, H, T, hs).

        Written out (scores, mask, softmax, weighted sum) because at these sizes it is
        a fifth faster than `scaled_dot_product_attention`'s CPU kernel (149 against
        191 us for 127 rows, 4 heads of 20), with the same result within 1e-6.
        """
        T = q.shape[2]
        mask = self._causal_masks.get(T)
        if mask is None:  # kept for the few sizes that recur (the window less one, past it); T x T only
            if len(self._causal_masks) >= 4:
                self._causal_masks.clear()
            mask = self._causal_masks[T] = torch.full((T, T), float("-inf"), device=q.device).triu(1)
        scores = torch.baddbmm(mask, q[0], k[0].transpose(1, 2), alpha=self.config.attention_scale)
        return torch.bmm(torch.softmax(scores, dim=-1), v[0]).unsqueeze(0)

    def _block(self, x, w: BlockWeights, layer: int, cache: KVCache | None, start: int, only_last_row: bool):
        T = x.shape[1]
        q, k, v = self._qkv(x, w, layer, cache, start)
        if only_last_row:
            # Nothing after the last block needs the other rows: the last query sees every key.
            q, x = q[:, :, -1:], x[:, -1:]
            attn = self.attend(q, k, v)
        elif isinstance(start, int) and start == 0:
            # A fill from the start (a one-row one too: the 1x1 mask changes nothing). Asked of the
            # Python int, never of a tensor: traced decode steps pass their position as one.
            attn = self._causal_attention(q, k, v)
        else:
            assert T == 1, "only single-token steps continue a filled cache"
            attn = self.attend(q, k, v)
        return self.after_attention(x, attn, w)


@contextmanager
def _intra_op_threads(threads: int):
    """torch's intra-op threads for a block of work, back to one after it (the engine's own count)."""
    if threads == 1:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(1)
