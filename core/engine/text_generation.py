"""One generation as text: the model's token steps (`core.decode.generation`) through the text
layer (`core.engine.text_stream`), with each step's probabilities kept when asked for."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import torch

from tfchat.core.decode.drafting import DraftStats
from tfchat.core.decode.generation import generate_steps
from tfchat.core.decode.step_info import StepInfo
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.engine.text_stream import TextStream, drawn_seed
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams


class Generation:
    """Iterate for text pieces; `stats`, `token_ids` and `steps` are filled as it goes.

    `notice` is a line for the user about how it runs (None here; a server backend may
    not take every sampler a preset sets).

    With `forced_ids`, those tokens follow the prompt as if the model had chosen
    them (a branch): their text comes first in the stream, but they are not new
    tokens, in `token_ids` or in the stats.
    """

    def __init__(self, model: FastModel, encoding, end_of_text_id: int | None, prompt_ids: list[int],
                 params: SamplingParams, cancel: threading.Event | None, top_logprobs: int = 0,
                 forced_ids: tuple[int, ...] = (), corpus_index=None):
        self._model = model
        self._encoding = encoding
        self._end_of_text_id = end_of_text_id  # a GPT-2's <|endoftext|>; None for the book's model
        self._prompt_ids = prompt_ids
        self._params = params
        self._cancel = cancel
        self._top_logprobs = top_logprobs
        self._forced_ids = forced_ids
        self._corpus_index = corpus_index  # the training text's, for drafting (`core.decode.drafting`)
        self.drafting = DraftStats(params.draft)
        self.seed = drawn_seed(params)
        self.token_ids: list[int] = []
        self.steps: list[StepInfo] = []  # one per new token when top_logprobs > 0
        self.text = ""
        self.stats: GenerationStats | None = None
        self.notice: str | None = None

    def __iter__(self) -> Iterator[str]:
        model, params = self._model, self._params
        stream = TextStream(self._encoding, len(self._prompt_ids), params, str(model.device), self.seed,
                            end_of_text_id=self._end_of_text_id, weights=model.weights)
        generator = torch.Generator(device=model.device).manual_seed(self.seed)
        reason = "stopped"  # what an exception or a caller that stops iterating leaves
        try:
            forced = stream.forced(self._forced_ids)
            if forced:
                self.text += forced
                yield forced
            context = self._prompt_ids + list(self._forced_ids)
            taken = self.drafting.taken_at
            for token, info in generate_steps(model, context, params, generator, self._cancel, self._top_logprobs,
                                              self._corpus_index, self.drafting):
                self.token_ids.append(token)
                if info is not None:
                    drafted = bool(taken) and taken[-1] == len(self.token_ids) - 1
                    self.steps.append(replace(info, drafted=True) if drafted else info)
                piece = stream.take(token)
                if piece:
                    self.text += piece
                    yield piece
                if stream.finish:
                    reason = stream.finish
                    break
            else:
                limit = params.token_limit
                reason = "length" if limit is not None and len(self.token_ids) >= limit else "stopped"
            tail, self.stats = stream.end(reason)
            if tail:
                self.text += tail
                yield tail
        finally:  # stats even for Ctrl+C: what was measured up to there
            if self.stats is None:
                self.stats = stream.end(reason)[1]
            if self.drafting.drafted:
                self.stats.drafting = self.drafting.as_json(len(self.token_ids))
