"""The book's model as a Hugging Face folder (`tfchat export` writes it): names, shapes, and reading it back.

The folder's tensors are the chapter's, renamed to transformers' usual names, with each block's per-head
Wq, Wk and Wv stacked into one `qkv_proj` (all query heads in head order, then the keys, then the values):
the same matrix the engine multiplies by, and split back exactly. Heads smaller than attention kernels take
are stored padded with zeros (`core.nn.head_padding`; config.json's `head_dim` says to what), and read back
without them. The causal masks are not weights and are not written.
"""
from __future__ import annotations

from pathlib import Path

import torch

from tfchat.core.errors import CheckpointError
from tfchat.core.nn.head_padding import KERNEL_HEAD_SIZES, pad_projection, pad_qkv, unpad_projection, unpad_qkv
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.nn.safetensors_file import read_safetensors
from tfchat.core.system.files import not_a_file
from tfchat.core.system.json_text import parse_json

MODEL_TYPE = "book_gpt"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 2**20

# Per block: the folder's name -> the chapter's (the attention's qkv_proj is handled on its own).
_BLOCK_NAMES = {
    "input_layernorm.weight": "ln1.weight", "input_layernorm.bias": "ln1.bias",
    "self_attn.o_proj.weight": "mha.projection_layer.weight", "self_attn.o_proj.bias": "mha.projection_layer.bias",
    "post_attention_layernorm.weight": "ln2.weight", "post_attention_layernorm.bias": "ln2.bias",
    "mlp.up_proj.weight": "ffn.ffn.0.weight", "mlp.up_proj.bias": "ffn.ffn.0.bias",
    "mlp.down_proj.weight": "ffn.ffn.2.weight", "mlp.down_proj.bias": "ffn.ffn.2.bias",
}


def hf_config(config: ModelConfig, head_dim: int) -> dict:
    """The architecture as the folder's config.json states it; `head_dim` is the stored (padded) head size."""
    return {
        "model_type": MODEL_TYPE, "architectures": ["BookGPTForCausalLM"],
        "vocab_size": config.vocab_size, "embedding_rows": config.embedding_rows,
        "hidden_size": config.d_model, "num_attention_heads": config.num_heads,
        "num_hidden_layers": config.num_blocks, "max_position_embeddings": config.context_length,
        "head_dim": head_dim, "intermediate_size": 4 * config.d_model, "layer_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    }


def config_from_hf(data: dict) -> ModelConfig:
    """The engine's configuration from a config.json of this model type (ValueError saying what is wrong)."""
    keys = ("hidden_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings", "vocab_size")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"config.json lacks {', '.join(missing)}")
    config = ModelConfig(d_model=data["hidden_size"], num_heads=data["num_attention_heads"],
                         num_blocks=data["num_hidden_layers"], context_length=data["max_position_embeddings"],
                         vocab_size=data["vocab_size"], embedding_rows=data.get("embedding_rows"))
    problems = config.problems()
    if problems:
        raise ValueError("config.json: " + "; ".join(problems))
    return config


def stored_head_dim(data: dict, config: ModelConfig) -> int:
    """The head size the folder's attention weights hold: config.json's `head_dim` (an export pads small
    heads), or the model's own in folders written before padding (ValueError when it cannot be)."""
    head_dim = data.get("head_dim", config.head_size)
    if type(head_dim) is not int or not config.head_size <= head_dim <= max(KERNEL_HEAD_SIZES[-1], config.head_size):
        raise ValueError(f"config.json: head_dim {str(head_dim)[:20]} cannot hold heads of {config.head_size}")
    return head_dim


def hf_shapes(config: ModelConfig, head_dim: int) -> dict[str, tuple[int, ...]]:
    """Every tensor of the folder, by its name, with its shape (attention's heads `head_dim` wide)."""
    D, HP = config.d_model, config.num_heads * head_dim
    block = {"input_layernorm.weight": (D,), "input_layernorm.bias": (D,), "self_attn.qkv_proj.weight": (3 * HP, D),
             "self_attn.o_proj.weight": (D, HP), "self_attn.o_proj.bias": (D,),
             "post_attention_layernorm.weight": (D,), "post_attention_layernorm.bias": (D,),
             "mlp.up_proj.weight": (4 * D, D), "mlp.up_proj.bias": (4 * D,),
             "mlp.down_proj.weight": (D, 4 * D), "mlp.down_proj.bias": (D,)}
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (config.embedding_rows, D)}
    for i in range(config.num_blocks):
        shapes.update({f"model.layers.{i}.{name}": shape for name, shape in block.items()})
    shapes.update({"model.norm.weight": (D,), "model.norm.bias": (D,),
                   "lm_head.weight": (config.vocab_size, D), "lm_head.bias": (config.vocab_size,)})
    return shapes


def to_hf_state(state: dict[str, torch.Tensor], config: ModelConfig, head_dim: int) -> dict[str, torch.Tensor]:
    """The chapter's tensors (as stored: dtype kept) under the folder's names, q/k/v stacked, each head
    padded with zeros to `head_dim`."""
    H, hs = config.num_heads, config.head_size
    out = {"model.embed_tokens.weight": state["token_embedding_lookup_table.weight"]}
    for i in range(config.num_blocks):
        chapter, p = f"transformer_blocks.{i}.", f"model.layers.{i}."
        qkv = torch.cat([state[f"{chapter}mha.heads.{h}.{w}.weight"] for w in ("Wq", "Wk", "Wv") for h in range(H)])
        for theirs, ours in _BLOCK_NAMES.items():
            out[p + theirs] = state[chapter + ours]
        out[p + "self_attn.qkv_proj.weight"] = pad_qkv(qkv, H, hs, head_dim)
        out[p + "self_attn.o_proj.weight"] = pad_projection(out[p + "self_attn.o_proj.weight"], H, hs, head_dim)
    final = f"transformer_blocks.{config.num_blocks}."
    out.update({"model.norm.weight": state[final + "weight"], "model.norm.bias": state[final + "bias"],
                "lm_head.weight": state["model_out_linear_layer.weight"],
                "lm_head.bias": state["model_out_linear_layer.bias"]})
    return {k: v.contiguous() for k, v in out.items()}


def split_heads(qkv: torch.Tensor, block: str, config: ModelConfig) -> dict[str, torch.Tensor]:
    """A block's stacked [3D, D] (every head's query rows, then keys, then values, in head order) as the
    chapter's per-head `{block}mha.heads.{h}.Wq|Wk|Wv.weight`."""
    D, hs = config.d_model, config.head_size
    rows = {(part, h): qkv[part * D + h * hs:part * D + (h + 1) * hs] for part in range(3) for h in range(config.num_heads)}
    return {f"{block}mha.heads.{h}.{w}.weight": rows[part, h].clone(memory_format=torch.contiguous_format)
            for part, w in enumerate(("Wq", "Wk", "Wv")) for h in range(config.num_heads)}


def from_hf_state(tensors: dict[str, torch.Tensor], config: ModelConfig, head_dim: int,
                  path: Path | None = None) -> dict[str, torch.Tensor]:
    """The folder's tensors back in the chapter's names (no masks), each head's Wq/Wk/Wv split out of
    its `head_dim`-wide padding (CheckpointError if the padding is not zeros)."""
    H, hs = config.num_heads, config.head_size
    state = {"token_embedding_lookup_table.weight": tensors["model.embed_tokens.weight"]}
    for i in range(config.num_blocks):
        chapter, p = f"transformer_blocks.{i}.", f"model.layers.{i}."
        for theirs, ours in _BLOCK_NAMES.items():
            state[chapter + ours] = tensors[p + theirs]
        qkv = unpad_qkv(tensors[p + "self_attn.qkv_proj.weight"], H, hs, head_dim)
        projection = unpad_projection(tensors[p + "self_attn.o_proj.weight"], H, hs, head_dim)
        if qkv is None or projection is None:
            raise CheckpointError(f"{path}: layer {i}'s heads are padded to {head_dim} with values that are not "
                                  "zeros; it is not the model an export wrote")
        state[chapter + "mha.projection_layer.weight"] = projection.contiguous()
        state.update(split_heads(qkv, chapter, config))
    final = f"transformer_blocks.{config.num_blocks}."
    state.update({final + "weight": tensors["model.norm.weight"], final + "bias": tensors["model.norm.bias"],
                  "model_out_linear_layer.weight": tensors["lm_head.weight"],
                  "model_out_linear_layer.bias": tensors["lm_head.bias"]})
    return state


def read_config_json(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    problem = not_a_file(path)
    if problem is not None and problem != "does not exist":
        raise CheckpointError(f"{path}: {problem}, not a config file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path}: larger than any model's config.json ({path.stat().st_size:,} bytes)")
        with open(path, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)  # bounded even if the file grows after the check
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: a directory without config.json; give a checkpoint file, or a folder "
                              "that tfchat export wrote") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: larger than any model's config.json")
    data = parse_json(raw, str(path), CheckpointError)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return data


def read_hf_weights(folder: Path, config: ModelConfig, head_dim: int) -> dict[str, torch.Tensor]:
    """The folder's tensors, each present, of its shape and nothing else (the chapter's names)."""
    path = folder / WEIGHTS_FILE
    problem = not_a_file(path)
    if problem == "does not exist":
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE} beside its config.json")
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}, not a weights file")
    tensors, _ = read_safetensors(path)
    check_named_shapes(path, tensors, hf_shapes(config, head_dim))
    return from_hf_state(tensors, config, head_dim, path)


def check_named_shapes(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """Every tensor config.json implies, of its shape, a float one, and nothing else."""
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"an unexpected {unexpected[0][:80]}"
        raise CheckpointError(f"{path}: its tensors do not match config.json ({detail})")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{path}: {name} has shape {list(tensors[name].shape)}; config.json implies "
                                  f"{list(shape)}")
        if not tensors[name].is_floating_point():
            raise CheckpointError(f"{path}: {name} is not a float tensor")
