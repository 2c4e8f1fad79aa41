"""What the app and the CLI need of a model, whoever runs it.

Three implementations, and the app never asks which it has:
- `core.engine.in_process.Engine`: the model in this process;
- `core.engine.engine_process.EngineProcess`: the model in a child process (the app's default);
- `core.engine.http_client.HttpBackend`: a model behind an OpenAI-compatible server (--endpoint).
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tfchat.core.engine.stats import GenerationStats
from tfchat.core.engine.text_stream import RowEvent
from tfchat.core.nn.inside_data import AttentionMaps, NextToken, ScoredText
from tfchat.core.settings.sampling_params import SamplingParams

if TYPE_CHECKING:
    import tiktoken


class ModelShape(Protocol):
    """What a caller needs to know of a model it may not hold: its window and its vocabulary."""
    context_length: int  # 0 when a server does not say
    vocab_size: int  # tokens the output layer scores
    embedding_rows: int  # tokens a prompt may use (one more than vocab_size in the repository's model.py)


@dataclass(frozen=True)
class ReportedShape:
    """A `ModelShape` as an engine process or a server reports it (the in-process engine's is its config)."""
    context_length: int
    vocab_size: int
    embedding_rows: int


class GenerationStream(Protocol):
    """Iterate for text pieces; `text`, `steps` (when top_logprobs > 0) as it goes, `stats` at the end."""
    text: str
    steps: list
    stats: GenerationStats | None
    notice: str | None  # a line for the user about how it runs (a sampler a server could not take)

    def __iter__(self) -> Iterable[str]: ...


class BatchStream(Protocol):
    """Iterate for `RowEvent`s; `texts`, `stats` and `notices` (as `GenerationStream.notice`) per row."""
    texts: list[str]
    stats: list[GenerationStats | None]
    notices: list[str | None]

    def __iter__(self) -> Iterable[RowEvent]: ...


@runtime_checkable
class Backend(Protocol):
    device: object  # where it runs, as the status line shows it
    parameter_count: int
    config: ModelShape
    encoding: tiktoken.Encoding  # cl100k_base: a token's text is core.engine.tokenizer.token_text(encoding, id)

    def generate(self, context: str, params: SamplingParams, cancel: threading.Event | None = None,
                 top_logprobs: int = 0, forced_ids: tuple[int, ...] = ()) -> GenerationStream: ...

    def generate_batch(self, contexts: list[str], params: list[SamplingParams],
                       cancel: threading.Event | None = None) -> BatchStream: ...

    def use_training_text(self, index) -> None:
        """Draft tokens from this training text's index (`core.corpus.index.CorpusIndex`) from the next
        generation on; only faster, never another text. A server drafts as it does."""

    def logit_lens(self, context: str, forced_ids: tuple[int, ...] = (), top_n: int = 5) -> list: ...

    # The inside views (core.nn.inspection); a server answers each with one line saying it cannot.
    def lens_spread(self, context: str, forced_ids: tuple[int, ...] = ()) -> list[tuple[float, float]]: ...

    def attention(self, context: str, forced_ids: tuple[int, ...] = ()) -> AttentionMaps: ...

    def next_token(self, context: str, forced_ids: tuple[int, ...] = (), off=(),
                   chosen: int | None = None) -> NextToken: ...

    def score(self, text: str, off=(), cancel: threading.Event | None = None) -> ScoredText: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...
