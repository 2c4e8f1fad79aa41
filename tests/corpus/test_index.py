"""The corpus index against brute force: spans, counts and continuations on random and repetitive corpora."""
import random

import pytest
import torch

from tfchat.core.corpus.index import CorpusIndex
from tfchat.core.corpus.index_build import build_index
from tfchat.core.corpus.copied_spans import covered_fraction
from tfchat.core.corpus.suffix_array import build_suffix_array


def index_of(tokens: list[int], newlines: list[int] | None = None) -> CorpusIndex:
    return build_index(tokens, newlines or [0] * (max(tokens) + 1))


def occurrences(corpus: list[int], pattern: list[int]) -> list[int]:
    width = len(pattern)
    return [i for i in range(len(corpus) - width + 1) if corpus[i:i + width] == pattern]


def brute_spans(corpus, text, min_tokens):
    found = []
    for i in range(len(text)):
        for j in range(i + min_tokens, len(text) + 1):
            if not occurrences(corpus, text[i:j]):
                break
            left = i > 0 and occurrences(corpus, text[i - 1:j])
            right = j < len(text) and occurrences(corpus, text[i:j + 1])
            if not left and not right:
                where = occurrences(corpus, text[i:j])
                found.append((i, j, len(where), where[0]))
    return found


def corpora(seed: int):
    """A random corpus over a small alphabet, and a repetitive one (a phrase copied with edits)."""
    rng = random.Random(seed)
    alphabet = rng.choice([2, 3, 6, 40])
    plain = [rng.randrange(alphabet) for _ in range(rng.randint(1, 120))]
    phrase = [rng.randrange(8) for _ in range(rng.randint(2, 12))]
    repetitive = []
    for _ in range(rng.randint(1, 10)):
        copy = list(phrase)
        if rng.random() < 0.5:
            copy[rng.randrange(len(copy))] = rng.randrange(8)
        repetitive += copy + [rng.randrange(8) for _ in range(rng.randint(0, 3))]
    return [(plain, alphabet), (repetitive, 8)]


def test_suffix_array_is_the_sorted_suffixes():
    for corpus, _ in (pair for seed in range(60) for pair in corpora(seed)):
        assert build_suffix_array(torch.tensor(corpus)).tolist() == sorted(range(len(corpus)), key=lambda i: corpus[i:])


@pytest.mark.parametrize("min_tokens", [1, 2, 4, 8])
def test_spans_and_their_counts_equal_brute_force(min_tokens):
    rng = random.Random(1000 + min_tokens)
    for corpus, alphabet in (pair for seed in range(60) for pair in corpora(seed)):
        index = index_of(corpus)
        # The text: pieces of the corpus and new tokens, so spans of every length occur.
        text = []
        while len(text) < rng.randint(1, 60):
            if rng.random() < 0.6 and len(corpus) > 1:
                start = rng.randrange(len(corpus))
                text += corpus[start:start + rng.randint(1, 15)]
            else:
                text.append(rng.randrange(alphabet + 1))  # sometimes a token the corpus never has
        expected = brute_spans(corpus, text, min_tokens)
        spans = index.spans(text, min_tokens)
        assert [(s.start, s.end, s.occurrences, s.first_at) for s in spans] == expected
        covered = {t for s in expected for t in range(s[0], s[1])}
        assert covered_fraction(spans, len(text)) == pytest.approx(len(covered) / len(text))


def test_continuations_equal_brute_force():
    rng = random.Random(2000)
    for corpus, alphabet in (pair for seed in range(60) for pair in corpora(seed)):
        index = index_of(corpus)
        start = rng.randrange(len(corpus))
        context = corpus[max(0, start - rng.randint(0, 10)):start + 1] if rng.random() < 0.7 else \
            [rng.randrange(alphabet) for _ in range(rng.randint(1, 8))]
        # The longest suffix of the context that occurs with a token after it, and what follows it.
        for length in range(len(context), -1, -1):
            suffix = context[len(context) - length:] if length else []
            follows = [corpus[i + length] for i in (occurrences(corpus, suffix) if length else range(len(corpus)))
                       if i + length < len(corpus)]
            if follows:
                break
        counts = {token: follows.count(token) for token in set(follows)}
        expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
        found = index.continuations(context, top=5)
        assert (found.suffix, found.total, found.top) == (length, len(follows), expected)


def test_counts_of_every_short_pattern_equal_brute_force():
    rng = random.Random(7)
    corpus = [rng.randrange(3) for _ in range(300)]
    index = index_of(corpus)
    for width in range(1, 6):
        for _ in range(30):
            pattern = [rng.randrange(4) for _ in range(width)]
            assert index.count(pattern) == len(occurrences(corpus, pattern))


def test_the_line_of_a_position_counts_the_newlines_before_it():
    rng = random.Random(11)
    newlines = [0, 0, 1, 2]  # token 2 holds one newline, token 3 two ('\n\n')
    corpus = [rng.randrange(4) for _ in range(200)]
    index = index_of(corpus, newlines)
    for position in range(len(corpus)):
        assert index.line_of(position) == 1 + sum(newlines[t] for t in corpus[:position])
