"""`tfchat bench --corpus FILE`: the training text's index: how long it takes to build and to read back,
the memory it holds a token, and what a query costs (a 400-token output's copied spans, a context's
continuations). `--corpus-tokens N` builds, besides, an N-token text made of the file's lines drawn at
random (a stand-in for a larger corpus with the same kind of repeats).
"""
from __future__ import annotations

import random
import statistics
import time
import torch

from tfchat.core.commands.bench.measures import print_table
from tfchat.core.corpus.corpus_text import read_corpus
from tfchat.core.corpus.copied_spans import DEFAULT_MIN_TOKENS, tokenizer_facts
from tfchat.core.corpus.index_build import build_index
from tfchat.core.corpus.index_cache import index_folder, read_index
from tfchat.core.corpus.suffix_array import build_suffix_array
from tfchat.core.corpus.training_text import TrainingText
from tfchat.core.engine.tokenizer import load_encoding
from tfchat.core.system.memory import process_resident_bytes

QUERY_TOKENS = 400
RUNS = 7


def median_ms(call, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def scaled_tokens(encoding, text: str, target: int, seed: int = 0) -> list[int]:
    """`target` tokens of the text's lines drawn at random, each tokenized as it is."""
    lines = [encoding.encode(line + "\n", disallowed_special=()) for line in text.splitlines() if line.strip()]
    rng, out = random.Random(seed), []
    while len(out) < target:
        out.extend(lines[rng.randrange(len(lines))])
    return out[:target]


def run_corpus_bench(path: str, scale_tokens: int | None) -> int:
    encoding = load_encoding()
    corpus = read_corpus(path)
    facts = tokenizer_facts(encoding)
    folder = index_folder(corpus, facts.key)
    started = time.perf_counter()
    ids = encoding.encode(corpus.text, disallowed_special=())
    tokenize_s = time.perf_counter() - started
    before = process_resident_bytes() or 0
    started = time.perf_counter()
    build_suffix_array(torch.tensor(ids, dtype=torch.int32))
    sort_s = time.perf_counter() - started
    started = time.perf_counter()
    index = build_index(ids, facts.newlines)  # the suffix array again, with the line ends and the arrays
    index_s = time.perf_counter() - started
    TrainingText.open(corpus.path, encoding)  # writes the cache when it is not there yet
    started = time.perf_counter()
    cached = read_index(folder, corpus.sha256, facts.key)
    read_s = time.perf_counter() - started
    rng = random.Random(1)
    start = rng.randrange(max(1, len(ids) - QUERY_TOKENS))
    copied = ids[start:start + QUERY_TOKENS // 2]
    fresh = encoding.encode(" ".join(rng.choice(["value", "quantum", "river", "seven", "blue", "deal", "trust"])
                                     for _ in range(QUERY_TOKENS)))[:QUERY_TOKENS - len(copied)]
    output = copied + fresh
    query_ms = median_ms(lambda: index.spans(output, DEFAULT_MIN_TOKENS))
    continuation_ms = median_ms(lambda: index.continuations(output[:QUERY_TOKENS // 4]))
    r = {"corpus": str(corpus.path), "tokens": len(ids), "tokenize_s": round(tokenize_s, 3),
         "suffix_array_s": round(sort_s, 3), "build_s": round(tokenize_s + index_s, 3),
         "cache_read_s": round(read_s, 4), "bytes_per_token": index.resident_bytes() / len(ids),
         "resident_growth_mib": round(((process_resident_bytes() or 0) - before) / 2**20, 1),
         "spans_query_ms_400_tokens": round(query_ms, 2), "continuations_query_ms": round(continuation_ms, 2),
         "cached": cached is not None}
    table = [("corpus", f"{corpus.path} ({len(ids):,} tokens)"),
             ("build", f"{r['build_s']:.2f} s (tokenize {tokenize_s:.2f} s, index {index_s:.2f} s, of which "
                       f"the suffix array {sort_s:.2f} s)"),
             ("read back from the cache", f"{read_s * 1000:.1f} ms"),
             ("resident", f"{r['bytes_per_token']:.1f} bytes a token (tokens, suffix array, line ends: int32)"),
             (f"copied spans of a {QUERY_TOKENS}-token output", f"{query_ms:.1f} ms (median of {RUNS})"),
             ("the corpus's continuations of a context", f"{continuation_ms:.1f} ms")]
    if scale_tokens:
        big = scaled_tokens(encoding, corpus.text, scale_tokens)
        started = time.perf_counter()
        big_index = build_index(big, facts.newlines)
        big_s = time.perf_counter() - started
        big_query = median_ms(lambda: big_index.spans(output, DEFAULT_MIN_TOKENS))
        r.update({"scaled_tokens": len(big), "scaled_index_s": round(big_s, 2),
                  "scaled_bytes_per_token": round(big_index.resident_bytes() / len(big), 2),
                  "scaled_spans_query_ms_400_tokens": round(big_query, 2)})
        table += [(f"{len(big):,} tokens of its lines drawn at random", f"indexed in {big_s:.1f} s, "
                   f"{big_index.resident_bytes() / len(big):.1f} bytes a token; a {QUERY_TOKENS}-token output's "
                   f"spans in {big_query:.1f} ms")]
    print_table(table, r)
    return 0
