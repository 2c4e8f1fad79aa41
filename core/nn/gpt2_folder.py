"""A transformers GPT-2 folder as `save_pretrained` leaves it (the book's GPT2/finetune-gpt2.py writes one),
read into the engine's names.

GPT-2 is the book's block with four differences, each carried into the engine's tensors: positions are a
trained table (`wpe`), the feed-forward's activation is GELU as the config names it, the fused `c_attn`
has a bias, and the output layer is the embedding itself (tied) with no bias, unless the folder has an
`lm_head` of its own. Its Conv1D layers store weights as [in, out]: transposed here to the book's
[out, in]. `c_attn`'s rows, once transposed, are every head's query, then keys, then values, in head
order: split into the book's per-head Wq, Wk, Wv, so the attention and ablation views see heads as
they see the book's.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from tfchat.core.errors import CheckpointError
from tfchat.core.system.files import not_a_file
from tfchat.core.nn.hf_folder import check_named_shapes, split_heads
from tfchat.core.nn.model_config import ACTIVATIONS, ModelConfig
from tfchat.core.nn.safetensors_file import read_safetensors

MODEL_TYPE = "gpt2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Buffers older transformers saved beside the weights: the causal mask and its fill value.
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def gpt2_config(data: dict) -> ModelConfig:
    """The engine's configuration from a GPT-2 config.json (ValueError saying what tfchat cannot run)."""
    D = data.get("n_embd", 768)
    if data.get("n_inner") not in (None, 4 * D if isinstance(D, int) else None):
        raise ValueError(f"n_inner {data.get('n_inner')} is not 4 x n_embd; tfchat runs GPT-2's standard shape")
    if data.get("scale_attn_by_inverse_layer_idx"):
        raise ValueError("attention scaled by the inverse of the layer index; tfchat runs 1/sqrt(head size) or none")
    eps = data.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"layer_norm_epsilon {str(eps)[:20]} is not a small positive number")
    activation = data.get("activation_function", "gelu_new")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation_function {str(activation)[:30]!r}; tfchat computes {', '.join(ACTIVATIONS)}")
    config = ModelConfig(d_model=D, num_heads=data.get("n_head", 12), num_blocks=data.get("n_layer", 12),
                         context_length=data.get("n_positions", 1024), vocab_size=data.get("vocab_size", 50257),
                         family="gpt2", activation=activation, positions="learned", layer_norm_eps=float(eps),
                         scale_attention=data.get("scale_attn_weights", True) is not False)
    problems = config.problems()
    if problems:
        raise ValueError("config.json: " + "; ".join(problems))
    return config


def gpt2_shapes(config: ModelConfig, tied: bool) -> dict[str, tuple[int, ...]]:
    """Every tensor of the folder (without its `transformer.` prefix), with its shape."""
    D, V, C = config.d_model, config.vocab_size, config.context_length
    shapes = {"wte.weight": (V, D), "wpe.weight": (C, D), "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for i in range(config.num_blocks):
        block = {"ln_1.weight": (D,), "ln_1.bias": (D,), "attn.c_attn.weight": (D, 3 * D), "attn.c_attn.bias": (3 * D,),
                 "attn.c_proj.weight": (D, D), "attn.c_proj.bias": (D,), "ln_2.weight": (D,), "ln_2.bias": (D,),
                 "mlp.c_fc.weight": (D, 4 * D), "mlp.c_fc.bias": (4 * D,), "mlp.c_proj.weight": (4 * D, D),
                 "mlp.c_proj.bias": (D,)}
        shapes.update({f"h.{i}.{name}": shape for name, shape in block.items()})
    if not tied:
        shapes["lm_head.weight"] = (V, D)
    return shapes


def _read_tensors(folder: Path, read_pickle) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILES:
        path = folder / name
        if os.path.lexists(path):
            problem = not_a_file(path)
            if problem is not None:
                raise CheckpointError(f"{path}: {problem}, not a weights file")
            break
    else:
        raise CheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin beside its config.json")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    raw = read_pickle(path)  # checkpoint.py's: weights_only, a zip bomb refused, one line for a damaged file
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return raw


def read_gpt2_weights(folder: Path, config: ModelConfig, tied: bool, read_pickle) -> dict[str, torch.Tensor]:
    """The folder's tensors in the engine's (the chapter's) names, checked against config.json;
    `read_pickle(path)` opens a pytorch_model.bin as checkpoints are opened."""
    tensors = {}
    for key, tensor in _read_tensors(folder, read_pickle).items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        tensors[key[len("transformer."):] if key.startswith("transformer.") else key] = tensor
    if tied:
        tensors.pop("lm_head.weight", None)  # saved beside its twin by some versions: the embedding is the one
    check_named_shapes(folder, tensors, gpt2_shapes(config, tied))
    return _engine_names(tensors, config, tied)


def _engine_names(t: dict[str, torch.Tensor], config: ModelConfig, tied: bool) -> dict[str, torch.Tensor]:
    state = {"token_embedding_lookup_table.weight": t["wte.weight"], "position_embedding.weight": t["wpe.weight"]}
    for i in range(config.num_blocks):
        g, p = f"h.{i}.", f"transformer_blocks.{i}."
        state[p + "ln1.weight"], state[p + "ln1.bias"] = t[g + "ln_1.weight"], t[g + "ln_1.bias"]
        state.update(split_heads(t[g + "attn.c_attn.weight"].t(), p, config))  # Conv1D's [D, 3D], transposed
        state[p + "mha.qkv_bias"] = t[g + "attn.c_attn.bias"]
        state[p + "mha.projection_layer.weight"] = t[g + "attn.c_proj.weight"].t().contiguous()
        state[p + "mha.projection_layer.bias"] = t[g + "attn.c_proj.bias"]
        state[p + "ln2.weight"], state[p + "ln2.bias"] = t[g + "ln_2.weight"], t[g + "ln_2.bias"]
        state[p + "ffn.ffn.0.weight"] = t[g + "mlp.c_fc.weight"].t().contiguous()
        state[p + "ffn.ffn.0.bias"] = t[g + "mlp.c_fc.bias"]
        state[p + "ffn.ffn.2.weight"] = t[g + "mlp.c_proj.weight"].t().contiguous()
        state[p + "ffn.ffn.2.bias"] = t[g + "mlp.c_proj.bias"]
    final = f"transformer_blocks.{config.num_blocks}."
    state[final + "weight"], state[final + "bias"] = t["ln_f.weight"], t["ln_f.bias"]
    head = t["wte.weight"] if tied else t["lm_head.weight"]
    state["model_out_linear_layer.weight"] = head
    state["model_out_linear_layer.bias"] = torch.zeros(config.vocab_size, dtype=head.dtype)  # GPT-2 has none
    return state
