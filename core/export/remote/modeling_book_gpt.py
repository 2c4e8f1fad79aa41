"""The book's model ("Transformer from scratch", chapter 18) as a transformers model.

Written by `tfchat export`; its weights are the book's, rearranged without changing a value: each layer's
per-head Wq, Wk and Wv are stacked into one `qkv_proj` in head order. Positions come from the book's
sinusoidal table (computed the same way, so the float bits agree), indexed by `position_ids`; the output
layer keeps its bias. Attention goes through transformers' attention interface, so `attn_implementation`
("eager", "sdpa", ...) and vLLM's Transformers backend can choose the kernel, and a transformers cache
makes `generate()` incremental. Heads smaller than those kernels take are stored padded with zeros to
`head_dim` (zero query/key/value rows, zero projection columns), and the softmax scale stays
1/sqrt(the real head size), so the padding changes no value.

The book's own generation crops the prompt to its last `max_position_embeddings` tokens before every
step; transformers has no such crop, so a position past the window is refused here with a clear error.
"""
import inspect
import math
from dataclasses import fields

import torch
from torch import nn

from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_book_gpt import BookGPTConfig


def sinusoidal_positions(context_length, d_model):
    """The book's position table, in its order of operations (this file runs without tfchat, so it
    carries its own copy of core.nn.book_model's)."""
    table = torch.zeros(context_length, d_model)
    position = torch.arange(0, context_length, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """The book's attention: (q kᵀ) scaled, masked, softmax, times v."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask[:, :, :, : key.shape[-2]], float("-inf"))
        else:
            weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


def _compiling():
    """Whether torch.compile is tracing this forward (torch releases before `torch.compiler` never do)."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_compiling", lambda: False)())


def _cache_name(output_class):
    """The name an output dataclass keeps its cache under in this transformers: `cache`, formerly
    `past_key_values`. Found once here, not in a forward: torch.compile (vLLM compiles the forward)
    cannot read a dataclass's fields."""
    return "cache" if "cache" in {f.name for f in fields(output_class)} else "past_key_values"


_BASE_CACHE = _cache_name(BaseModelOutputWithPast)
_CAUSAL_CACHE = _cache_name(CausalLMOutputWithPast)
# create_causal_mask's parameters, across its renamings (read once, outside any compiled forward).
_MASK_PARAMETERS = frozenset(inspect.signature(create_causal_mask).parameters)


def _causal_mask(config, inputs_embeds, attention_mask, cache, position_ids):
    """transformers' causal mask for this attention implementation, across its signature's renamings."""
    past = cache.get_seq_length() if cache is not None else 0
    candidates = {
        "config": config, "inputs_embeds": inputs_embeds, "input_embeds": inputs_embeds,
        "attention_mask": attention_mask, "cache": cache, "past_key_values": cache, "position_ids": position_ids,
        "cache_position": torch.arange(past, past + inputs_embeds.shape[1], device=inputs_embeds.device),
    }
    if "cache" in _MASK_PARAMETERS:  # the newer name; giving both is deprecated
        del candidates["past_key_values"]
    return create_causal_mask(**{k: v for k, v in candidates.items() if k in _MASK_PARAMETERS})


class BookGPTAttention(nn.Module):
    """The book's multi-head attention, its heads' Wq, Wk, Wv fused into one product."""

    def __init__(self, config, layer_idx):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim  # as stored: the real head size, or that padded with zeros
        self.scaling = 1.0 / math.sqrt(config.hidden_size // config.num_attention_heads)  # the real head size's
        self.is_causal = True
        self.attention_dropout = 0.0
        self.inner_size = self.num_heads * self.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * self.inner_size, bias=False)
        self.o_proj = nn.Linear(self.inner_size, config.hidden_size, bias=True)  # the book's projection_layer

    def forward(self, hidden_states, attention_mask=None, cache=None, **kwargs):
        batch, length, _ = hidden_states.shape
        query, key, value = (part.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
                             for part in self.qkv_proj(hidden_states).split(self.inner_size, dim=-1))
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        # This form (a name assigned from ALL_ATTENTION_FUNCTIONS, called once, `scaling=` given) is the one
        # vLLM's Transformers backend reads in the source to put its own attention, and scale, in its place.
        attention_interface = eager_attention_forward
        if self.config._attn_implementation not in (None, "eager"):
            attention_interface = ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
        output, weights = attention_interface(self, query, key, value, attention_mask, dropout=0.0,
                                              scaling=self.scaling, **kwargs)
        return self.o_proj(output.reshape(batch, length, self.inner_size).contiguous()), weights


class BookGPTMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act_fn = nn.ReLU()
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x):
        return self.down_proj(self.act_fn(self.up_proj(x)))


class BookGPTBlock(nn.Module):
    """x + attention(ln1(x)), then x + ffn(ln2(x)): the book's pre-norm block."""

    def __init__(self, config, layer_idx):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = BookGPTAttention(config, layer_idx)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = BookGPTMLP(config)

    def forward(self, hidden_states, attention_mask=None, cache=None, **kwargs):
        attended, _ = self.self_attn(self.input_layernorm(hidden_states), attention_mask, cache, **kwargs)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class BookGPTPreTrainedModel(PreTrainedModel):
    config_class = BookGPTConfig
    base_model_prefix = "model"
    _no_split_modules = ["BookGPTBlock"]
    _supports_attention_backend = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_cache_class = True

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class BookGPTModel(BookGPTPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.embedding_rows, config.hidden_size)
        self.layers = nn.ModuleList(BookGPTBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size)  # the book's final LayerNorm (default eps, as the book)
        self._positions = None  # computed on first use: not a buffer, so loading on the meta device cannot lose it
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def position_table(self, device, dtype):
        table = self._positions
        if table is None or table.device != device or table.dtype != dtype:
            table = sinusoidal_positions(self.config.max_position_embeddings, self.config.hidden_size)
            table = table.to(device=device, dtype=dtype)
            if not _compiling():  # a compiled forward computes it in its graph instead of keeping it
                self._positions = table
        return table

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, cache=None,
                past_key_values=None, use_cache=None, **kwargs):
        cache = cache if cache is not None else past_key_values
        kwargs.pop("cache_position", None)  # positions come from position_ids or the cache's length
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if use_cache and cache is None:
            try:
                cache = DynamicCache(config=self.config)
            except TypeError:  # transformers before the config argument
                cache = DynamicCache()
        if position_ids is None:
            past = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(past, past + inputs_embeds.shape[1], device=inputs_embeds.device)[None]
        window = self.config.max_position_embeddings
        # Checked eagerly only: a compiled forward (vLLM compiles it) cannot branch on a tensor's value, and
        # vLLM keeps every position inside max_model_len itself.
        if not _compiling() and int(position_ids.max()) >= window:
            raise ValueError(f"position {int(position_ids.max())} is past this model's window of {window} tokens; "
                             f"the book crops its input to the last {window} tokens before each step, transformers "
                             "does not: give at most the last window of tokens (see the model card)")
        hidden_states = inputs_embeds + self.position_table(inputs_embeds.device, inputs_embeds.dtype)[position_ids]
        mask = _causal_mask(self.config, inputs_embeds, attention_mask, cache, position_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask, cache, position_ids=position_ids, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states),
                                       **{_BASE_CACHE: cache if use_cache else None})


class BookGPTForCausalLM(BookGPTPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {}  # the book's output layer is its own matrix, with a bias

    def __init__(self, config):
        super().__init__(config)
        self.model = BookGPTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=True)  # model_out_linear_layer
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, cache=None,
                past_key_values=None, labels=None, use_cache=None, logits_to_keep=0, **kwargs):
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, cache=cache, past_key_values=past_key_values,
                             use_cache=use_cache, **kwargs)
        hidden_states = outputs.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            hidden_states = hidden_states[:, -logits_to_keep:]
        elif not isinstance(logits_to_keep, int):
            hidden_states = hidden_states[:, logits_to_keep]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                               labels[:, 1:].reshape(-1), ignore_index=-100)
        cache = getattr(outputs, "cache", None)
        if cache is None:
            cache = getattr(outputs, "past_key_values", None)
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{_CAUSAL_CACHE: cache})
