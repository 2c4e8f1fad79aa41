"""Several generations decoded together: one forward pass a step for every row.

Token level, like `core.decode.generation`: each row has its own prompt, sampling
parameters, generator, length and cancel, and finishes on its own. A step
decodes every unfinished row at once (`FastModel.decode_rows`), so the weights,
the output layer above all, are read once for all rows. Each row's logits are
those of its own window, cropped as the book crops (see `_fill_past_window_rows`), so a row
gives what a single generation with the same seed gives.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from tfchat.core.decode.generation import require_prompt
from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.decode.sampling import draw_next, logits_not_finite
from tfchat.core.decode.step_info import StepInfo
from tfchat.core.decode.step_packing import pack_step, unpack_step
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams

_NO_WINDOW = torch.empty(0, dtype=torch.long)


@dataclass
class Row:
    prompt_ids: list[int]
    params: SamplingParams
    generator: torch.Generator | None = None
    cancel: threading.Event | None = None
    top_logprobs: int = 0
    tokens: list[int] = field(default_factory=list)  # prompt and new tokens: the whole text so far
    window_start: int = 0  # with the `shift` window policy: where the row's window begins in `tokens`
    new_tokens: int = 0
    finish_reason: str | None = None  # 'length', 'stopped', or the caller's (`BatchRun.finish`)


def seeded_row(prompt_ids: list[int], params: SamplingParams, seed: int, device, cancel: threading.Event | None,
               top_logprobs: int = 0) -> Row:
    """A row drawing from its own generator, seeded: the same seed gives the same tokens, alone or batched."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return Row(prompt_ids, params, generator, cancel, top_logprobs)


@dataclass
class Token:
    row: int
    id: int
    step: StepInfo | None


class BatchRun:
    """Iterate for each step's new tokens, a list of `Token`; rows that finish drop out.

    Rows can also join between steps (`add`), as a server's requests do: a joining
    row's prompt fills its row of the cache in the step it joins, while the rows
    already there decode their next token.
    """

    def __init__(self, model: FastModel, rows: list[Row] = (), max_rows: int = MAX_ROWS):
        self.model = model
        self.max_rows = max_rows
        self.rows: dict[int, Row] = {}  # by index, until `release`d: a long run must not keep every row it served
        self._added = 0
        self._released: set[int] = set()  # rows to forget once they have left the cache
        self._slots: list[int] = []  # row index of each cache row, in order: rows decoding, then rows joining
        self._joining: list[int] = []  # rows added since the last step
        self._cache = None
        for row in rows:
            self.add(row)

    def add(self, row: Row) -> int:
        """A row to start in the next step; its index in `rows`."""
        if self.room() <= 0:
            raise ValueError(f"a batch holds 1 to {self.max_rows} rows, not {len(self._slots) + len(self._joining) + 1}")
        require_prompt(row.prompt_ids)
        row.tokens = list(row.prompt_ids)
        row.window_start = max(0, len(row.tokens) - self.model.config.context_length)  # the book's crop
        index, self._added = self._added, self._added + 1
        self.rows[index] = row
        self._joining.append(index)
        return index

    def release(self, index: int) -> None:
        """Forget an ended row (its tokens and all), once its caller has read how it ended."""
        if not self.ended(index):
            raise ValueError(f"row {index} is still going")
        self._released.add(index)
        self._forget_released()

    def _forget_released(self) -> None:
        """Released rows that hold no cache row any more (an ended row leaves it at the next step)."""
        for index in [i for i in self._released if i not in self._slots and i not in self._joining]:
            del self.rows[index]
            self._released.discard(index)

    def room(self) -> int:
        """How many more rows can join now."""
        return self.max_rows - len(self._slots) - len(self._joining)

    def finish(self, index: int, reason: str) -> None:
        """End one row (a stop string found by the caller); the others go on."""
        if self.rows[index].finish_reason is None:
            self.rows[index].finish_reason = reason

    def __iter__(self) -> Iterator[list[Token]]:
        while True:
            tokens = self.step()
            if not tokens:
                return
            yield tokens

    def step(self) -> list[Token]:
        """One token for every row still going (none when no row is); rows that ended leave first."""
        model = self.model
        with torch.inference_mode():
            self._drop_ended_rows()
            decoding = len(self._slots)
            joining = [i for i in self._joining if not self._ended(self.rows[i])]
            self._joining = []
            self._forget_released()
            if joining:
                self._grow_cache(len(joining))
                self._slots += joining
            if not self._slots:
                return []
            logits = []
            if decoding:
                shifted = self._shift_full_windows(decoding)
                ids, positions = zip(*(self._next_input(i) for i in self._slots[:decoding]))
                self._fill_past_window_rows(decoding, shifted)
                logits.append(model.decode_rows(torch.tensor(ids, device=model.device),
                                                torch.tensor(positions, device=model.device),
                                                self._cache.rows(0, decoding)))
            if joining:  # each joining row's prompt fills its row of the cache
                logits.append(torch.stack([self._prefill(i, decoding + k) for k, i in enumerate(joining)]))
            return self._draw(torch.cat(logits) if len(logits) > 1 else logits[0])

    def _grow_cache(self, rows: int) -> None:
        more = self.model.new_cache(rows)
        if self._cache is None or not self._slots:
            self._cache = more
            return
        self._cache.keys = torch.cat([self._cache.keys, more.keys], dim=1)
        self._cache.values = torch.cat([self._cache.values, more.values], dim=1)

    def ended(self, index: int) -> bool:
        """Whether row `index` is done: its length reached, cancelled, or finished by the caller."""
        return self._ended(self.rows[index])

    def _ended(self, row: Row) -> bool:
        if row.finish_reason is None and row.cancel is not None and row.cancel.is_set():
            row.finish_reason = "stopped"
        if row.finish_reason is None and row.params.token_limit is not None and row.new_tokens >= row.params.token_limit:
            row.finish_reason = "length"
        return row.finish_reason is not None

    def _window_start(self, row: Row) -> int:
        if row.params.window == "shift":
            return row.window_start
        return max(0, len(row.tokens) - self.model.config.context_length)  # the book's crop, every step

    def _window(self, index: int) -> list[int]:
        row = self.rows[index]
        return row.tokens[self._window_start(row):]

    def _prefill(self, index: int, slot: int) -> torch.Tensor:
        window = torch.tensor(self._window(index), device=self.model.device)
        return self.model.last_logits(window, self._cache.row(slot))

    def _next_input(self, index: int) -> tuple[int, int]:
        """The row's newest token and its position: the step decodes it after the positions before it."""
        row = self.rows[index]
        return row.tokens[-1], len(row.tokens) - self._window_start(row) - 1

    def _shift_full_windows(self, decoding: int) -> list[tuple[list[int], int]]:
        """`shift` rows whose window is full keep its last half: (tokens to compute afresh, cache row) each."""
        C, fills = self.model.config.context_length, []
        for slot, index in enumerate(self._slots[:decoding]):
            row = self.rows[index]
            if row.params.window == "shift" and len(row.tokens) - row.window_start > C:
                row.window_start = len(row.tokens) - max(1, C // 2)
                if len(row.tokens) - row.window_start > 1:  # a window of one token has nothing before it
                    fills.append((row.tokens[row.window_start:-1], slot))
        return fills

    def _fill_past_window_rows(self, decoding: int, shifted: list[tuple[list[int], int]]) -> None:
        """The cached positions of rows past the window, computed afresh.

        In the window they are in the cache already. Past it, the book's window is the
        last C tokens at positions 0..C-1 (positions shift each step, so nothing cached
        can be kept): its first C-1 are computed into the row, the last is decoded in the
        batched step; `shifted` rows get their kept half. With a helper thread, it fills every other row (a traced fill runs
        without the GIL, so the two go on at once).
        """
        C = self.model.config.context_length
        fills = [(self.rows[index].tokens[-C:-1], slot) for slot, index in enumerate(self._slots[:decoding])
                 if len(self.rows[index].tokens) > C and self.rows[index].params.window == "book"] + shifted

        def fill(jobs) -> None:
            with torch.inference_mode():  # thread-local: the helper thread needs it too
                for tokens, slot in jobs:
                    self.model.fill_cache(torch.tensor(tokens, device=self.model.device), self._cache.row(slot))

        if self.model.helper is not None and len(fills) > 1:
            self.model.helper.pair(lambda: fill(fills[::2]), lambda: fill(fills[1::2]))
        else:
            fill(fills)

    def _draw(self, logits: torch.Tensor) -> list[Token]:
        drawn = []
        for slot, index in enumerate(self._slots):
            row = self.rows[index]
            # The window matters only to the repetition penalty: no tensor built per row and step without one.
            window = (torch.tensor(self._window(index), device=self.model.device)
                      if row.params.repetition_penalty != 1.0 else _NO_WINDOW)
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
        if not keep:
            self._cache = None
        else:
            chosen = torch.tensor(keep, device=self.model.device)
            self._cache.keys = self._cache.keys.index_select(1, chosen)
            self._cache.values = self._cache.values.index_select(1, chosen)
