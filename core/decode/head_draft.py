"""Drafting with the model itself, for models whose output layer is most of a step (the book's).

The book's configuration reads 8M output-layer weights a token (100,070 tokens x 80) against 0.6M in
its blocks. So a draft here runs the real blocks, one token at a time, as the one-token step does (the
same traced step: the keys and values it writes are the step's own, bit for bit), and picks each next
token with the output layer cut to the vocabulary the model's text lives in: the training text's tokens
when it is known, else the 8,192 tokens the output layer's bias favours (94% of the shipped model's
textbook's tokens are among them), and the prompt's tokens. Only then
does the whole output layer run, once, over every drafted position's hidden state: a row of logits
each, as the verify of `core.nn.verify_step` gives them. A draft that is refused costs its blocks.

Each draft is drawn as the sampler will draw: the same penalty, temperature and filters over the cut
vocabulary, with a copy of the generation's generator, so it uses the very uniform number the real
draw of that position will use. Where the cut vocabulary holds nearly all the probability, the draft
is the token the real draw then picks; where it is not, the real draw (always the whole vocabulary,
the real generator) refuses it.
"""
from __future__ import annotations

import weakref

import torch

from tfchat.core.decode.sampling import NOT_FINITE, draw_next
from tfchat.core.nn.kv_cache import KVCache
from tfchat.core.settings.sampling_params import SamplingParams

# Worth it only where the output layer dominates: the blocks run once a drafted token, taken or not.
OUTPUT_SHARE = 2  # the output layer reads at least this many times the blocks' bytes
BIASED_TOKENS = 8192
_MADE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (corpus index, its HeadDraft)


def worth_drafting_with_the_head(model) -> bool:
    blocks = sum(block.nbytes() for block in model.blocks)
    return model.device.type == "cpu" and model.output_layer_bytes() >= OUTPUT_SHARE * blocks


class HeadDraft:
    def __init__(self, model, vocabulary: list[int]):
        self._model = model
        self.vocabulary = set(vocabulary)
        self._ids = torch.tensor(sorted(self.vocabulary), dtype=torch.long, device=model.device)
        self._weight_t = model.out_weight[self._ids].t().contiguous()  # [D, n]: one row streams it
        self._bias = model.out_bias[self._ids].unsqueeze(0)
        # Each vocabulary id's place in the cut one, -1 outside it: the window's ids for the penalty.
        self._place = torch.full((model.config.vocab_size,), -1, dtype=torch.long, device=model.device)
        self._place[self._ids] = torch.arange(self._ids.shape[0], device=model.device)

    @classmethod
    def for_model(cls, model, prompt_ids: list[int], corpus_index=None) -> "HeadDraft":
        """Cut to the training text's tokens, else to the bias's favourites (worked out once a model and text),
        and the prompt's own tokens: text the model sees it often goes on with."""
        made = _MADE.get(model)
        if made is None or made[0] is not corpus_index:
            made = _MADE[model] = (corpus_index, cls(model, _base_vocabulary(model, corpus_index)))
        base = made[1]
        V = model.config.vocab_size
        extra = {token for token in prompt_ids if token < V} - base.vocabulary
        return cls(model, sorted(base.vocabulary | extra)) if extra else base

    @torch.inference_mode()
    def draft(self, window: torch.Tensor, cache: KVCache, k: int, params: SamplingParams,
              generator: torch.Generator | None) -> tuple[torch.Tensor, list[int]]:
        """After `window` (its last token at position cache.length): up to k drafted tokens and a row of logits
        for each and the last token, row j the one-token step's after the window and j drafts. The cache then
        holds the rows' tokens (`cache.length` += rows); a caller that keeps fewer sets it back."""
        model, hidden, drafted = self._model, [], []
        twin = None
        if params.temperature != 0 and generator is not None:  # the real draws' uniform numbers, in order
            twin = torch.Generator(device=generator.device)
            twin.set_state(generator.get_state())
        seen = self._place[window]
        seen = seen[seen >= 0]
        token = window[-1:]
        for j in range(k + 1):
            h = model.decode_hidden(token, cache)
            hidden.append(h)
            if j == k:
                break
            logits = torch.addmm(self._bias, h.unsqueeze(0), self._weight_t)[0]
            best = draw_next(logits, params, seen, twin, keep_logits=False).token
            if int(best) == NOT_FINITE:
                break
            seen = torch.cat([seen, best.view(1)])
            token = self._ids[best].view(1)
            drafted.append(token)
        rows = model.output_layer(torch.stack(hidden))
        return rows, torch.cat(drafted).tolist() if drafted else []


def _base_vocabulary(model, corpus_index) -> list[int]:
    V = model.config.vocab_size
    if corpus_index is not None and len(corpus_index.tokens):
        tokens = torch.frombuffer(corpus_index.tokens, dtype=torch.int32)
        vocabulary = [token for token in torch.unique(tokens).tolist() if token < V]
        if vocabulary:
            return vocabulary
    return torch.topk(model.out_bias, min(BIASED_TOKENS, V)).indices.tolist()
