"""Choosing where the model lives. torch is imported only when a device is resolved, so the
app's process can check the user's choice without loading it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from tfchat.core.errors import TfchatError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def check_device_choice(name: str) -> None:
    """Refuses a device that is not one of the choices, or one this machine does not have.

    "auto" and "cpu" always work and are left to the process that loads the model; only an
    explicit GPU is looked for here (which loads torch).
    """
    if name not in DEVICE_CHOICES:
        raise TfchatError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name in ("cuda", "mps"):
        resolve_device(name)


def resolve_device(name: str = "auto") -> torch.device:
    import torch

    if name not in DEVICE_CHOICES:
        raise TfchatError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TfchatError("--device cuda: no CUDA GPU is available to this PyTorch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TfchatError("--device mps: Apple MPS is not available here")
    return torch.device(name)
