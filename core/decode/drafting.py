"""Drafted tokens, verified exactly: several tokens a step where the text is predictable, the same text.

A step that drafts asks a proposer (`core.decode.proposers`) for up to k tokens, then runs the last
known token and the drafts through the model in one pass (`core.nn.verify_step`): k+1 rows of logits,
row j being what the one-token step gives after the first j drafts. The generation then draws from
those rows in order, exactly as it draws without drafting (same sampler, same generator, one draw a
token): while a drawn token equals the draft, the next row is still the model's own logits for the
next position and is used; at the first difference the drawn token is kept, the rest is dropped and
the cache set back. Each kept token was drawn from the logits of the text before it, so the text is
token for token the text without drafting. Peers accept drafts by rejection sampling instead, equal
only in distribution.

How many tokens to draft adapts to how many were taken. From text: after a miss, fewer, and after
misses in a row none for a while (2 steps, then 4, doubling up to `MAX_REST`), so text with nothing to
copy decodes nearly as it does without drafting. From the model itself (`core.decode.head_draft`),
whose drafts cost their blocks taken or not: as many as a run likely holds, from a running rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from tfchat.core.decode.head_draft import HeadDraft, worth_drafting_with_the_head
from tfchat.core.decode.proposers import NOTHING, ContextLookup, CorpusLookup, Proposal
from tfchat.core.nn.kv_cache import KVCache
from tfchat.core.nn.verify_step import verify_rows

MAX_DRAFT = 8
FIRST_DRAFT = 4
MAX_REST = 32
# The model's own drafts (`head`): a running rate of drafts that hold, weighted to the last ten or so.
FIRST_HOLDS, HOLDS_WEIGHT, RUN_HOLDS, HEAD_REST = 0.9, 0.1, 0.6, 4


@dataclass
class DraftStats:
    """What drafting did in one generation; `tokens_per_pass` is new tokens over the model's passes."""
    draft: str  # the policy asked for: auto, context, corpus or off
    drafted: int = 0  # tokens proposed and checked
    accepted: int = 0  # of them, drawn as drafted
    passes: int = 0  # forward passes that gave a new token: one-token steps and verifies
    past_window: int = 0  # tokens decoded past the window under the book's crop, where drafting is off
    taken_at: list[int] = field(default_factory=list)  # which new tokens (from 0) were drafted and taken

    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    def as_json(self, new_tokens: int) -> dict:
        per_pass = new_tokens / self.passes if self.passes else 0.0
        return {"draft": self.draft, "drafted": self.drafted, "accepted": self.accepted, "passes": self.passes,
                "past_window": self.past_window, "acceptance": round(self.acceptance(), 3),
                "tokens_per_pass": round(per_pass, 3)}


def drafter_for(model, params, prompt_ids: list[int], stats: DraftStats, generator=None, corpus_index=None):
    """The drafter a `draft` setting asks for on this model, or None when nothing is drafted (off; the
    corpus without one; not on the CPU, where the one-token step is a CUDA graph; 8-bit weights,
    whose rounding a verify's float32 differences in the last bits could tip: drafting promises
    the very text the model writes without it).

    `auto` on a model whose output layer dominates (the book's) drafts with the model itself
    (`core.decode.head_draft`); elsewhere, and for `context` and `corpus`, from the text."""
    if model.device.type != "cpu" or model.weights != "exact":
        return None
    if params.draft == "auto" and worth_drafting_with_the_head(model):
        return Drafter(model, None, stats, HeadDraft.for_model(model, prompt_ids, corpus_index), params, generator)
    proposer = proposer_for(params.draft, prompt_ids, corpus_index)
    return Drafter(model, proposer, stats) if proposer is not None else None


def proposer_for(policy: str, prompt_ids: list[int], corpus_index=None):
    """The proposer a `draft` setting asks for, or None when it drafts nothing (off; corpus without one)."""
    if policy == "off" or (policy == "corpus" and corpus_index is None):
        return None
    context = ContextLookup(prompt_ids) if policy in ("auto", "context") else None
    corpus = CorpusLookup(corpus_index, prompt_ids) if corpus_index is not None and policy != "context" else None
    return _Either(context, corpus)


class _Either:
    """The context's proposal and the corpus's, whichever comes from the longer match (the context's on a tie:
    a model's own recent text is the surer guess)."""

    def __init__(self, context: ContextLookup | None, corpus: CorpusLookup | None):
        self._lookups = [lookup for lookup in (context, corpus) if lookup is not None]

    def append(self, token: int) -> None:
        for lookup in self._lookups:
            lookup.append(token)

    def propose(self, k: int) -> Proposal:
        best = NOTHING
        for lookup in self._lookups:
            proposal = lookup.propose(k)
            if proposal.match > best.match and proposal.tokens:
                best = proposal
        return best


class Drafter:
    """Logits for the next token, from a verified row when the last token drawn was the draft.

    `next_logits` stands in for the one-token step inside the window; the generation tells it each
    token drawn (`took`) and when its cache starts over (`forget`)."""

    def __init__(self, model, proposer, stats: DraftStats, head: HeadDraft | None = None, params=None,
                 generator=None):
        self._model = model
        self._proposer = proposer  # guesses from text; unused where the model drafts for itself (`head`)
        self._head = head
        self._params, self._generator = params, generator  # the head's drafts are drawn as the sampler draws
        self.stats = stats
        self._k = FIRST_DRAFT
        self._holds = FIRST_HOLDS  # with `head`: how often a drafted token holds, recently
        self._misses = 0  # verifies in a row that took no draft
        self._rest = 0  # steps left without drafting
        self._rows: torch.Tensor | None = None  # the last verify's logits, while its drafts are being taken
        self._drafts: list[int] = []
        self._start = 0  # the cache position of the verify's first row
        self._next_row = 0
        self._last_taken: int | None = None
        self._new_tokens = 0

    def took(self, token: int) -> None:
        """The token just drawn; it was a draft taken when the row it came from checked a draft equal to it."""
        row = self._next_row - 1
        if self._rows is not None and row < len(self._drafts) and self._drafts[row] == token:
            self.stats.taken_at.append(self._new_tokens)
        self._new_tokens += 1
        self._last_taken = token
        if self._proposer is not None:
            self._proposer.append(token)

    def forget(self) -> None:
        """The cache starts over (the `shift` window), or the generation ends: no verified row holds."""
        if self._rows is not None:
            row = self._next_row
            taken = row <= len(self._drafts) and self._last_taken == self._drafts[row - 1]
            self._close(row - 1 + taken)

    def next_logits(self, window: torch.Tensor, cache: KVCache, tokens_left: int | None) -> torch.Tensor:
        """The next token's logits; the cache holds the window but its last token, as for the one-token step."""
        model = self._model
        if self._rows is not None:
            row = self._next_row
            if row <= len(self._drafts) and self._last_taken == self._drafts[row - 1]:
                self._next_row += 1
                cache.length = self._start + row + 1  # the rows so far are the text's: keep their keys
                return self._rows[row]
            self._close(row - 1)
        if cache.length == 0:  # the prompt's fill: one pass for the whole window
            self.stats.passes += 1
            return model.last_logits(window, cache)
        k = self._draft_size(cache, tokens_left)
        self.stats.passes += 1
        start = cache.length
        if k > 0 and self._head is not None:
            self._rows, drafts = self._head.draft(window, cache, k, self._params, self._generator)
        else:
            drafts = self._proposer.propose(k).tokens if k > 0 and self._proposer is not None else []
            if not drafts:
                return model.last_logits(window[-1:], cache)
            ids = torch.cat([window[-1:], torch.tensor(drafts, dtype=torch.long, device=window.device)])
            with model.reading_threads():  # as many as the one-token steps take now
                self._rows = verify_rows(model, ids, cache)
        self._start, self._drafts, self._next_row = start, drafts, 1
        self.stats.drafted += len(drafts)
        cache.length = start + 1
        return self._rows[0]

    def _draft_size(self, cache: KVCache, tokens_left: int | None) -> int:
        if self._rest > 0:
            self._rest -= 1
            return 0
        # The drafts' rows must fit the window, and no more than the tokens still wanted after this one.
        k = min(self._k, self._model.config.context_length - 1 - cache.length)
        return k if tokens_left is None else min(k, tokens_left - 1)

    def _close(self, accepted: int) -> None:
        """The verify's drafts are done with: `accepted` of them were drawn as drafted. Adapt k."""
        drafted = len(self._drafts)
        self.stats.accepted += accepted
        self._rows, self._drafts = None, []
        if self._head is not None:
            self._adapt_to_holding(accepted, drafted)
        elif accepted == drafted:
            self._k, self._misses = min(2 * self._k, MAX_DRAFT), 0
        elif accepted == 0:
            self._k, self._misses = 1, self._misses + 1
            self._rest = min(2 ** self._misses, MAX_REST)
        else:
            self._k, self._misses = max(1, accepted + 1), 0

    def _adapt_to_holding(self, accepted: int, drafted: int) -> None:
        """The model's own drafts: every drafted token costs its blocks, taken or not, so k is as long as a run
        of drafts likely holds (each holds with the running rate `_holds`: k while holds**k >= RUN_HOLDS)."""
        for _ in range(accepted):
            self._holds += HOLDS_WEIGHT * (1 - self._holds)
        if accepted < drafted:  # the first refused; those after it were never asked
            self._holds -= HOLDS_WEIGHT * self._holds
        if self._holds < 1:
            self._k = max(1, min(MAX_DRAFT, int(math.log(RUN_HOLDS) / math.log(self._holds))))
        else:
            self._k = MAX_DRAFT
        self._rest = HEAD_REST if self._holds < RUN_HOLDS else 0
