"""The engine: a resident model and its tokenizer, generating text as it streams.

Speaks text at its edges and tokens inside (`core.generation`). One Engine is
built per model file and kept for the whole session.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from core.checkpoint import load_checkpoint
from core.device import resolve_device
from core.errors import CheckpointError
from core.fast_model import FastModel
from core.generation import generate_ids, require_prompt
from core.sampling import SamplingParams
from core.streaming import StopFilter
from core.tokenizer import IncrementalDecoder, encode_prompt, load_encoding
from core.worker import helper_for


@dataclass
class GenerationStats:
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    tokens_per_s: float
    """Decode rate: tokens after the first over the time after the first."""
    elapsed_s: float
    device: str
    finish_reason: str
    """'length', 'stop' (a stop string) or 'stopped' (cancelled, or the caller stopped iterating)."""
    seed: int

    def as_dict(self) -> dict:
        return asdict(self)


class Generation:
    """Iterate for text pieces; `stats` and `token_ids` are filled as it goes."""

    def __init__(self, engine: "Engine", prompt_ids: list[int], params: SamplingParams, cancel: threading.Event | None):
        self._engine = engine
        self._prompt_ids = prompt_ids
        self._params = params
        self._cancel = cancel
        self.seed = params.seed if params.seed is not None else secrets.randbits(62)
        self.token_ids: list[int] = []
        self.text = ""
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        engine, params = self._engine, self._params
        start = time.perf_counter()
        generator = torch.Generator(device=engine.device).manual_seed(self.seed)
        decoder = IncrementalDecoder(engine.encoding)
        stops = StopFilter(params.stop)
        first_at = None
        reason = "stopped"  # what an exception or a caller that stops iterating leaves
        try:
            for token in generate_ids(engine.model, self._prompt_ids, params, generator, self._cancel):
                if first_at is None:
                    first_at = time.perf_counter()
                self.token_ids.append(token)
                piece, stopped = stops.feed(decoder.push(token))
                if piece:
                    self.text += piece
                    yield piece
                if stopped:
                    reason = "stop"
                    break
            else:
                reason = "length" if len(self.token_ids) >= params.max_new_tokens else "stopped"
            if reason != "stop":
                tail, stopped = stops.feed(decoder.flush())
                tail += "" if stopped else stops.flush()
                if tail:
                    self.text += tail
                    yield tail
        finally:  # stats even for Ctrl+C: what was measured up to there
            self.stats = self._make_stats(start, first_at, time.perf_counter(), reason)

    def _make_stats(self, start: float, first_at: float | None, end: float, reason: str) -> GenerationStats:
        n = len(self.token_ids)
        if n > 1 and end > first_at:
            rate = (n - 1) / (end - first_at)
        else:
            rate = n / (end - start) if end > start else 0.0
        return GenerationStats(
            prompt_tokens=len(self._prompt_ids),
            new_tokens=n,
            ttft_s=(first_at - start) if first_at is not None else 0.0,
            tokens_per_s=rate,
            elapsed_s=end - start,
            device=str(self._engine.device),
            finish_reason=reason,
            seed=self.seed,
        )


class Engine:
    def __init__(self, model: FastModel, path: Path | None = None, parameter_count: int = 0):
        self.model = model
        self.device = model.device
        self.config = model.config
        self.path = path
        self.parameter_count = parameter_count
        self.encoding = load_encoding()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "Engine":
        target = resolve_device(device)
        checkpoint = load_checkpoint(path)
        encoding = load_encoding()
        if checkpoint.config.vocab_size > encoding.n_vocab:
            raise CheckpointError(f"{path}: max_token_value {checkpoint.config.vocab_size} is larger than the "
                                  f"{encoding.n_vocab} tokens of cl100k_base; not a model of this tokenizer")
        model = FastModel(checkpoint.config, checkpoint.state_dict, target, helper_for(target))
        return cls(model, Path(path), checkpoint.parameter_count)

    def encode(self, text: str) -> list[int]:
        return encode_prompt(self.encoding, text, self.config.vocab_size)

    def generate(self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None) -> Generation:
        """A generation to iterate; the prompt is checked here, before any work."""
        ids = self.encode(prompt)
        require_prompt(ids)  # here, before the caller starts streaming
        return Generation(self, ids, params, cancel)

    def close(self) -> None:
        if self.model.helper is not None:
            self.model.helper.close()
