"""Several generations decoded together: one forward pass a step for every row.

Token level, like `core.generation`: each row has its own prompt, sampling
parameters, generator, length and cancel, and finishes on its own. A step
decodes every unfinished row at once (`FastModel.decode_rows`), so the weights,
the output layer above all, are read once for all rows. Each row's logits are
those of its own window, cropped as the book crops (see `_prepare`), so a row
gives what a single generation with the same seed gives.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from core.fast_model import FastModel
from core.generation import require_prompt
from core.sampling import SamplingParams, draw_next, logits_not_finite
from core.trace import StepInfo, pack_step, unpack_step

MAX_ROWS = 8


@dataclass
class Row:
    prompt_ids: list[int]
    params: SamplingParams
    generator: torch.Generator | None = None
    cancel: threading.Event | None = None
    top_logprobs: int = 0
    tokens: list[int] = field(default_factory=list)  # prompt and new tokens: the whole text so far
    new_tokens: int = 0
    finish_reason: str | None = None  # 'length', 'stopped', or the caller's (`BatchRun.finish`)


@dataclass
class Token:
    row: int
    id: int
    step: StepInfo | None


class BatchRun:
    """Iterate for each step's new tokens, a list of `Token`; rows that finish drop out."""

    def __init__(self, model: FastModel, rows: list[Row]):
        if not 1 <= len(rows) <= MAX_ROWS:
            raise ValueError(f"a batch holds 1 to {MAX_ROWS} rows, not {len(rows)}")
        for row in rows:
            require_prompt(row.prompt_ids)
            row.tokens = list(row.prompt_ids)
        self.model = model
        self.rows = rows
        self._slots: list[int] = []  # row index of each cache row, in order
        self._cache = None

    def finish(self, index: int, reason: str) -> None:
        """End one row (a stop string found by the caller); the others go on."""
        if self.rows[index].finish_reason is None:
            self.rows[index].finish_reason = reason

    def __iter__(self) -> Iterator[list[Token]]:
        model = self.model
        with torch.inference_mode():
            self._slots = [i for i, row in enumerate(self.rows) if not self._ended(row)]
            if not self._slots:
                return
            self._cache = model.new_cache(len(self._slots))
            # The first step: each row's prompt fills its row of the cache.
            logits = torch.stack([self._prefill(i, slot) for slot, i in enumerate(self._slots)])
            while True:
                yield self._draw(logits)
                self._drop_ended_rows()
                if not self._slots:
                    return
                ids, positions = zip(*(self._prepare(i, slot) for slot, i in enumerate(self._slots)))
                logits = model.decode_rows(torch.tensor(ids, device=model.device),
                                           torch.tensor(positions, device=model.device), self._cache)

    def ended(self, index: int) -> bool:
        """Whether row `index` is done: its length reached, cancelled, or finished by the caller."""
        return self._ended(self.rows[index])

    def _ended(self, row: Row) -> bool:
        if row.finish_reason is None and row.cancel is not None and row.cancel.is_set():
            row.finish_reason = "stopped"
        if row.finish_reason is None and row.new_tokens >= row.params.max_new_tokens:
            row.finish_reason = "length"
        return row.finish_reason is not None

    def _window(self, index: int) -> list[int]:
        return self.rows[index].tokens[-self.model.config.context_length:]

    def _prefill(self, index: int, slot: int) -> torch.Tensor:
        window = torch.tensor(self._window(index), device=self.model.device)
        return self.model.last_logits(window, self._cache.row(slot))

    def _prepare(self, index: int, slot: int) -> tuple[int, int]:
        """The row's newest token and its position, with the positions before it in the row's cache.

        In the window they are there already. Past it, the book's window is the last C
        tokens at positions 0..C-1: its first C-1 are computed afresh into the row
        (positions shift each step, so nothing cached can be kept), the last decoded here.
        """
        tokens, C = self.rows[index].tokens, self.model.config.context_length
        if len(tokens) <= C:
            return tokens[-1], len(tokens) - 1
        window = torch.tensor(tokens[-C:-1], device=self.model.device)
        self.model.fill_cache(window, self._cache.row(slot))
        return tokens[-1], C - 1

    def _draw(self, logits: torch.Tensor) -> list[Token]:
        drawn = []
        for slot, index in enumerate(self._slots):
            row = self.rows[index]
            window = torch.tensor(self._window(index), device=self.model.device)
            keep = bool(row.top_logprobs)
            draw = draw_next(logits[slot], row.params, window, row.generator, keep_logits=keep)
            drawn.append(pack_step(logits[slot], draw, row.top_logprobs) if keep else draw.token)
        # One host transfer for the step, unless some rows carry their step information.
        hosts = torch.stack(drawn).tolist() if all(d.dim() == 0 for d in drawn) else [d.tolist() for d in drawn]
        tokens = []
        for index, host in zip(self._slots, hosts):
            row = self.rows[index]
            step = unpack_step(host) if row.top_logprobs else None
            token_id = step.id if step is not None else host
            if not 0 <= token_id < self.model.config.vocab_size:
                raise logits_not_finite(row.new_tokens + 1)
            row.tokens.append(token_id)
            row.new_tokens += 1
            tokens.append(Token(index, token_id, step))
        return tokens

    def _drop_ended_rows(self) -> None:
        """Rows that ended leave the cache, so later steps compute only the rows still going."""
        keep = [slot for slot, index in enumerate(self._slots) if not self._ended(self.rows[index])]
        if len(keep) == len(self._slots):
            return
        self._slots = [self._slots[slot] for slot in keep]
        if keep:
            chosen = torch.tensor(keep, device=self.model.device)
            self._cache.keys = self._cache.keys.index_select(1, chosen)
            self._cache.values = self._cache.values.index_select(1, chosen)
