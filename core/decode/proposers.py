"""Where drafted tokens come from: text the model is likely to repeat, found without a second model.

- `ContextLookup`: the tokens that followed the latest earlier occurrence of the context's last n
  tokens (n from `MAX_NGRAM` down to 1): prompt lookup, as HF transformers and llama.cpp call it. Small
  models repeat themselves and their prompt, so this pays more often than it might seem.
- `CorpusLookup`: the tokens that follow the context's longest suffix in the training text
  (`core.corpus.index`): small models recite what they were trained on.

Plain Python on token ids; a proposal is only a guess, checked token by token (`core.decode.drafting`),
so nothing here can change the text.
"""
from __future__ import annotations

from array import array
from collections import Counter

MAX_NGRAM = 4
MAX_CORPUS_SUFFIX = 16  # longer matches than this say nothing more about what comes next
CORPUS_SAMPLES = 32  # occurrences looked at to pick the most common continuation


class Proposal:
    """Up to k tokens and how long a match they come from (longer: likelier to be right)."""

    __slots__ = ("tokens", "match")

    def __init__(self, tokens: list[int], match: int):
        self.tokens, self.match = tokens, match


NOTHING = Proposal([], 0)


class ContextLookup:
    def __init__(self, ids: list[int]):
        self._ids: list[int] = []
        self._latest: dict[tuple[int, ...], int] = {}  # n-gram -> where its latest earlier occurrence ends
        for token in ids:
            self.append(token)

    def append(self, token: int) -> None:
        """One more token of the text; the n-grams ending before it become earlier occurrences."""
        ids, end = self._ids, len(self._ids)
        for n in range(1, min(MAX_NGRAM, end) + 1):
            self._latest[tuple(ids[end - n:end])] = end
        ids.append(token)

    def propose(self, k: int) -> Proposal:
        ids, end = self._ids, len(self._ids)
        for n in range(min(MAX_NGRAM, end), 0, -1):
            found = self._latest.get(tuple(ids[end - n:end]))
            if found is not None:
                return Proposal(ids[found:found + k], n)
        return NOTHING


class CorpusLookup:
    def __init__(self, index, ids: list[int]):
        self._index = index  # core.corpus.index.CorpusIndex
        self._ids = array("i", ids[-MAX_CORPUS_SUFFIX:])

    def append(self, token: int) -> None:
        self._ids.append(token)
        if len(self._ids) > 4 * MAX_CORPUS_SUFFIX:  # only the last few are ever asked about
            del self._ids[:-MAX_CORPUS_SUFFIX]

    def propose(self, k: int) -> Proposal:
        """The corpus's likeliest next token after the longest suffix, then after that suffix and the token,
        and so on: k tokens, each the commonest continuation of the run so far (among `CORPUS_SAMPLES`)."""
        index, text = self._index, self._ids
        short = index.longest_suffix(text, MAX_CORPUS_SUFFIX)
        if short == 0:
            return NOTHING
        pattern = text[len(text) - short:]
        lo, hi = index.find(pattern)
        tokens, suffixes, end = index.tokens, index.suffixes, len(index.tokens)
        proposed: list[int] = []
        while len(proposed) < k and lo < hi:
            width = len(pattern)
            following = Counter(tokens[at + width] for at in suffixes[lo:min(hi, lo + CORPUS_SAMPLES)]
                                if at + width < end)
            if not following:
                break
            likeliest = following.most_common(1)[0][0]
            proposed.append(likeliest)
            pattern.append(likeliest)
            # The suffixes that go on with it are a run of [lo, hi): the array is sorted.
            lo = index.bound(pattern, lo, hi, upper=False)
            hi = index.bound(pattern, lo, hi, upper=True)
        return Proposal(proposed, short)
