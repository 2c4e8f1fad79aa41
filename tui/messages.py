"""What the loading threads tell the app: the backend is ready, is being waited for, or failed; one more
model of the shelf ended loading. Posted to the app, not the screen: once the app is closing, they are not
handled."""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tfchat.core.engine.backend import Backend
from tfchat.tui.state.model_shelf import ModelSlot


@dataclass
class EngineReady(Message):
    engine: Backend


@dataclass
class EngineRetrying(Message):
    reason: str
    delay_s: float
    tries: int


@dataclass
class EngineFailed(Message):
    reason: str
    missing_model: bool = False


@dataclass
class ModelLoaded(Message):
    """One more model of the shelf ended loading: ready, or failed with its line."""
    slot: ModelSlot
