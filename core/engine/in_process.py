"""The engine: a resident model and its tokenizer, generating text as it streams.

Speaks text at its edges and tokens inside (`core.decode.generation`). One Engine is
built per model file and kept for the whole session.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
import time
from pathlib import Path

import torch

from tfchat.core.decode.generation import require_prompt
from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.decode.step_info import check_top_logprobs
from tfchat.core.engine.batch_generation import BatchGeneration
from tfchat.core.engine.text_generation import Generation
from tfchat.core.engine.tokenizer import encode_prompt, tokenizer_for
from tfchat.core.errors import CheckpointError, PromptError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.int8_weights import check_weights
from tfchat.core.nn.inside_data import AttentionMaps, NextToken, ScoredText, ScoredToken
from tfchat.core.nn.inspection import (attention_maps, check_heads, layer_logits, lens_spread, next_token,
                                       score_ids, score_passes)
from tfchat.core.nn.model_card import ModelCard, make_card
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.device import resolve_device
from tfchat.core.system.helper_thread import helper_for
from tfchat.core.system.memory import process_resident_bytes


class Engine:
    def __init__(self, model: FastModel, path: Path | None = None, parameter_count: int = 0,
                 card: ModelCard | None = None, tokenizer_folder: Path | None = None):
        self.model = model
        self.device = model.device
        self.config = model.config
        self.path = path
        self.parameter_count = parameter_count
        self.card = card
        self.tokenizer_folder = tokenizer_folder
        self.encoding = tokenizer_for(tokenizer_folder)
        # A GPT-2 ends its texts with <|endoftext|>; the book's model never learned one.
        self.end_of_text_id = getattr(self.encoding, "eot_token", None) if tokenizer_folder is not None else None
        self.corpus_index = None  # the training text's index (`core.corpus`): drafts tokens from it

    def use_training_text(self, index) -> None:
        """Draft from this training text's index from now on (`core.decode.drafting`); None: the context only."""
        self.corpus_index = index

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", weights: str = "exact") -> "Engine":
        started = time.perf_counter()
        target = resolve_device(device)
        check_weights(weights, target)
        checkpoint = load_checkpoint(path)
        encoding = tokenizer_for(checkpoint.tokenizer_folder)
        if checkpoint.config.vocab_size > encoding.n_vocab:
            raise CheckpointError(f"{path}: max_token_value {checkpoint.config.vocab_size} is larger than the "
                                  f"{encoding.n_vocab} tokens of {encoding.name}; not a model of this tokenizer")
        model = FastModel(checkpoint.config, checkpoint.state_dict, target, helper_for(target), weights)
        if target.type == "cpu":
            model.trace_decode_ahead()  # while the tokenizer loads and the prompt fills the cache
        card = make_card(checkpoint, target, model.resident_bytes(), time.perf_counter() - started, model.weights)
        # The tokenizer's ranks and the loaded modules are a few hundred thousand objects that live as
        # long as the process: out of the collector's sight, its first full collection (which came ~80
        # tokens into a fresh process's first generation: 85 ms) walks none of them.
        gc.freeze()
        return cls(model, Path(path), checkpoint.parameter_count, card, checkpoint.tokenizer_folder)

    def describe(self) -> dict:
        """The model inspector's facts (`core.nn.model_card`), with this process's resident memory now."""
        card = self.card.as_dict() if self.card is not None else {}
        return {**card, "process_resident_bytes": process_resident_bytes()}

    def logit_lens(self, prompt: str, forced_ids: tuple[int, ...] = (), top_n: int = 5) -> list[list[tuple[int, float]]]:
        """For the token after `prompt` + `forced_ids`: each block's top `top_n` (id, probability),
        first block first; the last row is the model's own prediction. The window is cropped as the book does."""
        check_top_logprobs(top_n)
        ids = (self.encode(prompt) + list(forced_ids))[-self.config.context_length:]
        require_prompt(ids)
        logits = layer_logits(self.model, torch.tensor(ids, dtype=torch.long, device=self.device))
        probs, top_ids = torch.topk(torch.softmax(logits, dim=-1), min(top_n, logits.shape[-1]), dim=-1)
        return [[(int(i), float(p)) for i, p in zip(row_ids, row_probs)]
                for row_ids, row_probs in zip(top_ids.tolist(), probs.tolist())]

    # ----- inside the model (core.nn.inspection); the window cropped as the book does --------------
    def _window(self, context: str, forced_ids: tuple[int, ...]) -> list[int]:
        ids = (self.encode(context) + list(forced_ids))[-self.config.context_length:]
        require_prompt(ids)
        return ids

    def attention(self, context: str, forced_ids: tuple[int, ...] = ()) -> AttentionMaps:
        """Every layer's and head's attention over the window the model sees after `context` + `forced_ids`."""
        return attention_maps(self.model, self._window(context, forced_ids))

    def next_token(self, context: str, forced_ids: tuple[int, ...] = (), off=(), chosen: int | None = None) -> NextToken:
        """The next token's likeliest candidates with the (layer, head) pairs `off` switched off."""
        return next_token(self.model, self._window(context, forced_ids), check_heads(self.model, off), chosen)

    def lens_spread(self, context: str, forced_ids: tuple[int, ...] = ()) -> list[tuple[float, float]]:
        """Each block's (entropy, KL from the final prediction) for the logit lens's step, in nats."""
        return lens_spread(self.model, self._window(context, forced_ids))

    def score(self, text: str, off=(), cancel: threading.Event | None = None) -> ScoredText:
        """Every token of `text` after the first, scored given the up-to-context_length tokens before it."""
        ids = self.encode(text)
        if len(ids) < 2:
            raise PromptError("scoring needs a text of at least two tokens: the first has nothing before it")
        return score_ids(self.model, ids, check_heads(self.model, off), cancel)

    def score_passes(self, text: str, off=()) -> tuple[int, Iterator[list[ScoredToken]]]:
        """How many tokens `text` scores, and their scores a pass at a time, without alternatives:
        `tfchat score`'s way through a long text in flat memory."""
        ids = self.encode(text)
        if len(ids) < 2:
            raise PromptError("scoring needs a text of at least two tokens: the first has nothing before it")
        return len(ids) - 1, score_passes(self.model, ids, check_heads(self.model, off), top=0)

    def encode(self, text: str) -> list[int]:
        # Prompts may use every embedding row (one more than the output layer in the repository's
        # model.py); sampling draws only what the output layer has.
        return encode_prompt(self.encoding, text, self.config.embedding_rows)

    def generate(self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None,
                 top_logprobs: int = 0, forced_ids: tuple[int, ...] = ()) -> Generation:
        """A generation to iterate; the prompt is checked here, before any work.

        `top_logprobs` > 0 fills `Generation.steps` with each token's probabilities and
        that many alternatives; `forced_ids` continue the prompt first (a branch).
        """
        check_top_logprobs(top_logprobs)
        ids = self.encode(prompt)
        bad = [i for i in forced_ids if not (isinstance(i, int) and 0 <= i < self.config.embedding_rows)]
        if bad:
            raise PromptError(f"forced token {bad[0]!r} is outside the model's vocabulary of "
                              f"{self.config.embedding_rows} tokens")
        require_prompt(ids + list(forced_ids))  # here, before the caller starts streaming
        return Generation(self.model, self.encoding, self.end_of_text_id, ids, params, cancel, top_logprobs,
                          tuple(forced_ids), self.corpus_index)

    def generate_batch(self, prompts: list[str], params: list[SamplingParams], cancel: threading.Event | None = None,
                       top_logprobs: int = 0) -> BatchGeneration:
        """Several generations decoded together (`core.engine.batch_generation`): prompt i with params i.
        Every prompt is checked here, before any work; `cancel` stops every row."""
        check_top_logprobs(top_logprobs)
        if len(prompts) != len(params) or not 1 <= len(prompts) <= MAX_ROWS:
            raise PromptError(f"a batch takes 1 to {MAX_ROWS} prompts, each with its parameters "
                              f"({len(prompts)} prompts, {len(params)} parameter sets)")
        ids = [self.encode(prompt) for prompt in prompts]
        for row in ids:
            require_prompt(row)
        return BatchGeneration(self.model, self.encoding, self.end_of_text_id, ids, params, cancel, top_logprobs)

    def close(self) -> None:
        if self.model.helper is not None:
            self.model.helper.close()
