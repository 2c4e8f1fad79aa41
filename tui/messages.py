"""Messages from the engine's worker threads to the app (posted, never awaited)."""
from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from core.engine.backend import Backend
from core.engine.stats import GenerationStats


@dataclass
class EngineReady(Message):
    engine: Backend


@dataclass
class EngineFailed(Message):
    reason: str
    missing_model: bool = False


@dataclass
class GenerationDone(Message):
    stats: GenerationStats | None
    error: str | None = None
    steps: list = field(default_factory=list)  # StepInfo per new token
