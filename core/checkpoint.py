"""The one loader of book checkpoints: `{'model_state_dict': ..., 'h_params': ...}`.

Loads with `weights_only=True` (a file carrying pickled code is refused) onto the
CPU first, so a checkpoint saved on a GPU opens anywhere, and checks every key
and shape against `h_params` before anything is built from it.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import CheckpointError
from core.model_config import ModelConfig

ARCH_KEYS = ("d_model", "num_heads", "num_blocks", "context_length", "max_token_value")


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    h_params: dict

    @property
    def parameter_count(self) -> int:
        """Trainable parameters, as the book counts them: every tensor but the causal masks."""
        return sum(t.numel() for k, t in self.state_dict.items() if not k.endswith(".mask"))


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the book's model saves, by key, with its shape."""
    D, H, C, V, hs = config.d_model, config.num_heads, config.context_length, config.vocab_size, config.head_size
    shapes: dict[str, tuple[int, ...]] = {"token_embedding_lookup_table.weight": (V, D)}
    for i in range(config.num_blocks):
        p = f"transformer_blocks.{i}."
        for ln in ("ln1", "ln2"):
            shapes[f"{p}{ln}.weight"] = (D,)
            shapes[f"{p}{ln}.bias"] = (D,)
        for h in range(H):
            for w in ("Wq", "Wk", "Wv"):
                shapes[f"{p}mha.heads.{h}.{w}.weight"] = (hs, D)
            shapes[f"{p}mha.heads.{h}.mask"] = (C, C)
        shapes[f"{p}mha.projection_layer.weight"] = (D, D)
        shapes[f"{p}mha.projection_layer.bias"] = (D,)
        shapes[f"{p}ffn.ffn.0.weight"] = (4 * D, D)
        shapes[f"{p}ffn.ffn.0.bias"] = (4 * D,)
        shapes[f"{p}ffn.ffn.2.weight"] = (D, 4 * D)
        shapes[f"{p}ffn.ffn.2.bias"] = (D,)
    shapes[f"transformer_blocks.{config.num_blocks}.weight"] = (D,)
    shapes[f"transformer_blocks.{config.num_blocks}.bias"] = (D,)
    shapes["model_out_linear_layer.weight"] = (V, D)
    shapes["model_out_linear_layer.bias"] = (V,)
    return shapes


def config_from_h_params(h_params: dict) -> ModelConfig:
    missing = [k for k in ARCH_KEYS if k not in h_params]
    if missing:
        raise ValueError(f"h_params lacks {', '.join(missing)}")
    config = ModelConfig(
        d_model=h_params["d_model"],
        num_heads=h_params["num_heads"],
        num_blocks=h_params["num_blocks"],
        context_length=h_params["context_length"],
        vocab_size=h_params["max_token_value"],
    )
    problems = config.problems()
    if problems:
        raise ValueError("h_params: " + "; ".join(problems))
    return config


def _read(path: Path) -> object:
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles; we report our own line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers; a
        # "GLOBAL" it names is code the file wanted to run or import.
        blocked = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if blocked:
            raise CheckpointError(
                f"{path}: refused, it asks to load Python code ({blocked.group(1)}), not just tensors"
            ) from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt, or another format)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, corrupt or truncated ({reason})") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    raw = _read(path)
    if not isinstance(raw, dict) or "model_state_dict" not in raw or "h_params" not in raw:
        raise CheckpointError(f"{path}: not a book checkpoint (expected a dict with 'model_state_dict' and 'h_params')")
    state, h_params = raw["model_state_dict"], raw["h_params"]
    if not isinstance(state, dict) or not isinstance(h_params, dict):
        raise CheckpointError(f"{path}: 'model_state_dict' and 'h_params' must both be dicts")
    try:
        config = config_from_h_params(h_params)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    check_state_dict(path, state, config)
    return Checkpoint(path=path, config=config, state_dict=state, h_params=h_params)


def check_state_dict(path: Path, state: dict, config: ModelConfig) -> None:
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        raise CheckpointError(f"{path}: keys do not match the book's model for its h_params: {'; '.join(parts)}")
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: {key} is not a tensor")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{path}: {key} has shape {list(tensor.shape)} but h_params imply {list(shape)}"
            )
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: {key} has dtype {tensor.dtype}, expected floating point")
        if not key.endswith(".mask") and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
