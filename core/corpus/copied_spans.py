"""What of a text occurs verbatim in the training text: its maximal copied spans, the share of its tokens
inside them, the longest; each span's count and the corpus line of its first occurrence.

`tfchat overlap` prints it, `generate --corpus` and `score --corpus` add its figures, the app's overlap
view marks it. The tokenizer is the model's own, as training tokenized the text.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tfchat.core.corpus.index import CorpusIndex, Span
from tfchat.core.engine.tokenizer import token_bytes

DEFAULT_MIN_TOKENS = 8


@dataclass(frozen=True)
class TokenizerFacts:
    """What the index needs of a tokenizer: a key that names it (for the cache), and each token's newlines."""

    key: str
    newlines: list[int]  # per token id


def tokenizer_facts(encoding) -> TokenizerFacts:
    """cl100k_base by its name; any other (a GPT-2 folder's BPE) by a hash of every token's bytes."""
    vocabulary = encoding.n_vocab
    every = [token_bytes(encoding, token) for token in range(vocabulary)]
    newlines = [piece.count(b"\n") for piece in every]
    if encoding.name == "cl100k_base":
        return TokenizerFacts("cl100k_base", newlines)
    digest = hashlib.sha256(b"\x00".join(every)).hexdigest()[:16]
    return TokenizerFacts(f"bpe-{vocabulary}-{digest}", newlines)


@dataclass(frozen=True)
class CopiedSpan:
    start: int
    end: int  # exclusive
    text: str
    occurrences: int
    line: int  # of the corpus, from 1: where its first occurrence starts
    first_at: int  # the corpus token position of that occurrence

    def as_json(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text, "occurrences": self.occurrences,
                "line": self.line}


@dataclass(frozen=True)
class Overlap:
    tokens: int
    min_tokens: int
    spans: list[CopiedSpan]
    copied_fraction: float
    longest: int

    def as_json(self) -> dict:
        return {"tokens": self.tokens, "min_tokens": self.min_tokens, "spans": [s.as_json() for s in self.spans],
                "copied_fraction": self.copied_fraction, "longest": self.longest}

    def figures(self) -> dict:
        """What `generate --stats` and `score` add: the share copied and the longest span."""
        return {"copied_fraction": round(self.copied_fraction, 4), "longest": self.longest}

    def summary(self) -> str:
        """One line: how much is copied, the longest span, how many spans."""
        if not self.tokens:
            return "no tokens to compare"
        if not self.spans:
            return f"nothing copied: no run of {self.min_tokens}+ tokens occurs in the corpus"
        return (f"{self.copied_fraction:.0%} of {self.tokens} tokens in {len(self.spans)} copied "
                f"span{'s' if len(self.spans) != 1 else ''} ({self.min_tokens}+ tokens), longest {self.longest}")


def covered_fraction(spans: list[Span], tokens: int) -> float:
    """The share of the text's tokens inside at least one span (spans may overlap)."""
    covered, reach = 0, 0
    for span in spans:  # in start order
        if span.end > reach:
            covered += span.end - max(span.start, reach)
            reach = span.end
    return covered / tokens if tokens else 0.0


def overlap_of(index: CorpusIndex, ids: list[int], min_tokens: int, encoding) -> Overlap:
    if min_tokens < 1:
        raise ValueError("min_tokens is at least 1")
    spans = index.spans(ids, min_tokens)
    copied = [CopiedSpan(s.start, s.end, encoding.decode(ids[s.start:s.end]), s.occurrences,
                         index.line_of(s.first_at), s.first_at) for s in spans]
    return Overlap(len(ids), min_tokens, copied, covered_fraction(spans, len(ids)),
                   max((s.length for s in spans), default=0))


def corpus_around(index: CorpusIndex, encoding, position: int, length: int, context_tokens: int = 60) -> str:
    """The corpus's text around a span's first occurrence: some tokens before, the span, some after."""
    start = max(0, position - context_tokens)
    end = min(len(index), position + length + context_tokens)
    return encoding.decode(index.tokens[start:end].tolist())
