"""An index of a corpus's tokens: which token sequences occur in it, how often, where, and what follows.

A suffix array over the token ids (`suffix_array`), searched by binary search with whole-sequence
comparisons done by `array`'s own C code: about 7 µs a search on 10 million tokens. 8 bytes a
token are resident: the tokens and the suffix array, both int32 (and 4 a newline, for line numbers).
Plain Python: the app's process, which never loads torch, asks it too (building one is `index_build`).

The questions are infini-gram's (Liu et al., 2024): for each position of a text, the longest run of
its tokens from there that occurs in the corpus; the maximal such runs (OLMoTrace's spans); and for a
context, its longest suffix that occurs and the tokens that follow it in the corpus, with counts.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Tokens [start, end) of a text that occur verbatim in the corpus, and can be extended on neither side."""

    start: int
    end: int
    occurrences: int
    first_at: int  # the corpus position (in tokens) of its first occurrence

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Continuations:
    """What the corpus continues a context with: after its longest suffix that occurs (`suffix` tokens long),
    each following token and how often, most frequent first; `total` occurrences in all."""

    suffix: int
    total: int
    top: list[tuple[int, int]]


class CorpusIndex:
    def __init__(self, tokens: array, suffixes: array, newline_ends: array):
        """`newline_ends`: for each newline of the text, the position of the token after the one holding it
        (in order, once a newline): how many lie at or before a position is its line less one."""
        assert tokens.typecode == suffixes.typecode == newline_ends.typecode == "i" and len(tokens) == len(suffixes)
        self.tokens, self.suffixes, self.newline_ends = tokens, suffixes, newline_ends
        self._unigrams: Counter | None = None  # counted once, when a context's last token is not in the corpus

    def __len__(self) -> int:
        return len(self.tokens)

    def resident_bytes(self) -> int:
        return sum(part.itemsize * len(part) for part in (self.tokens, self.suffixes, self.newline_ends))

    # ----- finding a sequence -----------------------------------------------------------
    def bound(self, pattern: array, lo: int, hi: int, upper: bool) -> int:
        """The first suffix in [lo, hi) whose first len(pattern) tokens are >= pattern (> with `upper`)."""
        tokens, suffixes, width = self.tokens, self.suffixes, len(pattern)
        while lo < hi:
            mid = (lo + hi) // 2
            at = suffixes[mid]
            head = tokens[at:at + width]
            if head < pattern or (upper and head == pattern):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, pattern) -> tuple[int, int]:
        """[lo, hi): the suffix array's range of the suffixes that begin with `pattern`; empty when it never occurs."""
        pattern = pattern if isinstance(pattern, array) else array("i", pattern)
        lo = self.bound(pattern, 0, len(self.suffixes), upper=False)
        return lo, self.bound(pattern, lo, len(self.suffixes), upper=True)

    def occurs(self, pattern: array) -> bool:
        lo = self.bound(pattern, 0, len(self.suffixes), upper=False)
        if lo == len(self.suffixes):
            return False
        at = self.suffixes[lo]
        return self.tokens[at:at + len(pattern)] == pattern

    def count(self, pattern) -> int:
        lo, hi = self.find(pattern)
        return hi - lo

    def first_position(self, lo: int, hi: int) -> int:
        """The earliest corpus position among the suffixes [lo, hi)."""
        return min(self.suffixes[lo:hi])

    # ----- a text against the corpus ----------------------------------------------------
    def match_lengths(self, ids: list[int]) -> list[int]:
        """For each position i of `ids`, how many of its tokens from i on occur in the corpus as they are.

        The run from i+1 is at least the run from i less one token, so each position starts from there:
        about two searches a position, whatever the runs' lengths."""
        text = array("i", ids)
        lengths, run = [0] * len(text), 0
        for i in range(len(text)):
            run = max(run - 1, 0)
            while i + run < len(text) and self.occurs(text[i:i + run + 1]):
                run += 1
            lengths[i] = run
        return lengths

    def spans(self, ids: list[int], min_tokens: int, lengths: list[int] | None = None) -> list[Span]:
        """Every maximal run of at least `min_tokens` tokens of `ids` that occurs in the corpus: it occurs,
        and with one more token on either side it does not. In the text's order."""
        lengths = self.match_lengths(ids) if lengths is None else lengths
        text, found = array("i", ids), []
        for i, run in enumerate(lengths):
            # Right-maximal by construction; left-maximal when the run from i-1 does not reach past it.
            if run >= min_tokens and (i == 0 or lengths[i - 1] <= run):
                lo, hi = self.find(text[i:i + run])
                found.append(Span(i, i + run, hi - lo, self.first_position(lo, hi)))
        return found

    def longest_suffix(self, text: array, limit: int | None = None) -> int:
        """How many of `text`'s last tokens (at most `limit`) occur in the corpus: a binary search, as a
        suffix that occurs has every shorter one occurring too."""
        short, long = 0, len(text) if limit is None else min(limit, len(text))
        while short < long:
            middle = (short + long + 1) // 2
            if self.occurs(text[len(text) - middle:]):
                short = middle
            else:
                long = middle - 1
        return short

    def continuations(self, context: list[int], top: int = 10) -> Continuations:
        """The corpus's next tokens after the longest suffix of `context` that occurs with a token after it."""
        text = array("i", context)
        short = self.longest_suffix(text)
        for length in range(short, -1, -1):  # a suffix found only at the corpus's end has nothing after it
            counts = self._next_tokens(text[len(text) - length:] if length else array("i"), length)
            if counts:
                ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
                return Continuations(length, sum(counts.values()), ranked)
        return Continuations(0, 0, [])

    def _next_tokens(self, pattern: array, length: int) -> Counter:
        if not length:  # no suffix occurs: what the corpus holds at all
            if self._unigrams is None:
                self._unigrams = Counter(self.tokens)
            return self._unigrams
        lo, hi = self.find(pattern)
        tokens, end = self.tokens, len(self.tokens) - length
        return Counter(tokens[at + length] for at in self.suffixes[lo:hi] if at < end)

    # ----- where in the corpus ------------------------------------------------------------
    def line_of(self, position: int) -> int:
        """The corpus line (from 1) that token `position` starts on."""
        return 1 + bisect_right(self.newline_ends, position)
