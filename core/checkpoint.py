"""The one loader of book checkpoints: `{'model_state_dict': ..., 'h_params': ...}`.

Loads with `weights_only=True` (a file carrying pickled code is refused) onto the
CPU first, so a checkpoint saved on a GPU opens anywhere, and checks every key
and shape against `h_params` before anything is built from it.

A file is untrusted input: its sizes are checked before they are believed.
`h_params` must be in range and fit this machine's memory; every tensor must be
a plain dense float tensor whose storage really holds its elements (a 7 KB file
can describe 10^11 elements with `expand()`); a zip whose entries would expand
far beyond the file is refused before torch reads it.
"""
from __future__ import annotations

import os
import pickle
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import CheckpointError, describe_exception
from core.model_config import ModelConfig

ARCH_KEYS = ("d_model", "num_heads", "num_blocks", "context_length", "max_token_value")
# What the weights may be stored as; everything is upcast to float32 once loaded.
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# torch.save writes uncompressed entries; a compressed one may expand at most this much.
MAX_EXPANSION = 8


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


def _check_zip_expansion(path: Path, size: int) -> None:
    """Refuse a zip bomb before torch decompresses it (torch's own files are stored, not deflated)."""
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a zip (the legacy format) or unreadable: torch.load reports it
    if expanded > MAX_EXPANSION * size + 2**20:
        raise CheckpointError(f"{path}: its zip entries expand to {expanded:,} bytes from a {size:,}-byte file; "
                              "refused (not what torch.save writes)")


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
    except MemoryError:
        raise CheckpointError(f"{path}: too large to load into this machine's memory") from None
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes torch or pickle raise
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, corrupt or truncated ({describe_exception(exc)})"
        ) from None


def check_model_file(path: Path) -> os.stat_result:
    """The file's stat when it is a readable regular file; else a CheckpointError saying what it is."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block the load forever, or cannot be seeked as a zip needs.
        raise CheckpointError(f"{path}: not a regular file (a pipe or a device); save the checkpoint to a file")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: permission denied")
    return info


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    info = check_model_file(path)
    _check_zip_expansion(path, info.st_size)
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
    _check_fits_in_memory(path, config)
    check_state_dict(path, state, config)
    return Checkpoint(path=path, config=config, state_dict=state, h_params=h_params)


def _physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_fits_in_memory(path: Path, config: ModelConfig) -> None:
    needed, available = config.resident_bytes(), _physical_memory_bytes()
    if available is not None and needed > available:
        raise CheckpointError(f"{path}: its h_params describe a model needing {needed / 2**30:.1f} GiB as float32, "
                              f"more than this machine's {available / 2**30:.1f} GiB")


def _tensor_problem(tensor) -> str | None:
    """Why a state-dict entry cannot be a weight; None when it is a plain dense float tensor."""
    if not isinstance(tensor, torch.Tensor):
        return f"is a {type(tensor).__name__}, not a tensor"
    if tensor.layout != torch.strided or tensor.is_quantized:
        return f"is a {str(tensor.layout).replace('torch.', '')} tensor; only dense tensors are weights"
    if tensor.is_meta or tensor.device.type != "cpu":
        return f"holds no data (a tensor on the {tensor.device.type} device)"
    if tensor.dtype not in WEIGHT_DTYPES:
        allowed = ", ".join(str(d).replace("torch.", "") for d in WEIGHT_DTYPES)
        return f"has dtype {str(tensor.dtype).replace('torch.', '')}; weights are {allowed}"
    claimed = tensor.numel() * tensor.element_size()
    stored = tensor.untyped_storage().nbytes()
    if claimed > stored:
        # expand() and stride tricks: a few bytes in the file standing for billions of elements.
        return f"claims {claimed:,} bytes of data but the file stores {stored:,} for it"
    return None


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
        problem = _tensor_problem(tensor)
        if problem:
            raise CheckpointError(f"{path}: {key} {problem}")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{path}: {key} has shape {list(tensor.shape)} but h_params imply {list(shape)}"
            )
        if not key.endswith(".mask") and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
