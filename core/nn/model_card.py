"""What the model inspector shows: the file, its h_params and every tensor (the book's 20.6), and memory.

Built once when the model loads, as plain data, so it crosses a pipe or an HTTP
response unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from tfchat.core.nn.checkpoint import Checkpoint
from tfchat.core.system.files import stored_bytes


@dataclass
class ModelCard:
    file: str
    file_bytes: int
    stored_dtypes: list[str]
    device: str
    h_params: dict
    parameter_count: int
    tensors: list[tuple[str, list[int], str]]  # name, shape, stored dtype, in the file's order
    resident_bytes: int
    """Bytes of the weights as the engine holds them on its device (float32, fused)."""
    layout: str = ""
    """What the file is: its form and naming dialect (`Checkpoint.layout`)."""
    h_params_source: str = "stored in the file"
    load_seconds: float | None = None
    """From opening the file to the engine ready to generate."""
    positions: str = "sinusoidal"
    """The book's computed table, or "learned" (a GPT-2's trained wpe)."""
    training_text: dict | None = None
    """{"path", "sha256"} of the text `tfchat train` trained it on, when it says."""
    weights: str = "exact"
    """As the engine computes with them: "exact", or "int8" (`core.nn.int8_weights`: not exact)."""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelCard":
        card = cls(**data)
        card.tensors = [(name, list(shape), dtype) for name, shape, dtype in card.tensors]
        return card


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def json_value(value):
    """An h_params value as JSON can carry it; anything else as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def make_card(checkpoint: Checkpoint, device: torch.device, resident_bytes: int,
              load_seconds: float | None = None, weights: str = "exact") -> ModelCard:
    tensors = [(checkpoint.stored_name(name), list(t.shape), _dtype_name(t.dtype))
               for name, t in checkpoint.state_dict.items()]
    return ModelCard(
        file=str(checkpoint.path.resolve()),
        file_bytes=stored_bytes(checkpoint.path),
        stored_dtypes=sorted({dtype for _, _, dtype in tensors}),
        device=str(device),
        h_params={str(k): json_value(v) for k, v in checkpoint.h_params.items()},
        parameter_count=checkpoint.parameter_count,
        tensors=tensors,
        resident_bytes=resident_bytes,
        layout=checkpoint.layout,
        h_params_source=h_params_source(checkpoint),
        load_seconds=load_seconds,
        positions=checkpoint.config.positions,
        training_text=checkpoint.training_text,
        weights=weights,
    )


def h_params_source(checkpoint: Checkpoint) -> str:
    return "inferred from the tensors" if checkpoint.h_params_inferred else "stored in the file"
