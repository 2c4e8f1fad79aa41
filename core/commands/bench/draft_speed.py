"""`tfchat bench --drafting`: tokens/s with drafting (`core.decode.drafting`) against without, interleaved.

Three shapes: the book's configuration with a trained model (default: the shipped one) continuing its
training text, and random weights at the 140M scifi shape and GPT-2 small's (124M: D=768, 12 heads,
12 blocks, 1024 positions, 50,257 tokens), each in float32 and float16. Two prompts each:
- grounded: for the trained model, passages of its training text (`--corpus`, else the one it records);
  random weights recite nothing, so there the training text stands in for one a model recites: their own
  continuation of the prompt, made first without drafting;
- ungrounded: a prompt of random tokens, and no training text (the context alone drafts).
Greedy and the balanced preset (seeded); then greedy again at the book config and the scifi shape in
float16 beside a process burning the other core. Every drafted run is checked against its run without
drafting, token for token, and the report says so.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from tfchat.core.commands.bench.measures import print_table, random_ids
from tfchat.core.commands.bench.neighbour import busy_neighbour
from tfchat.core.decode.drafting import DraftStats
from tfchat.core.decode.generation import generate_steps
from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.settings.presets import load_presets
from tfchat.core.system.helper_thread import helper_for

GPT2_SMALL_SHAPE = ModelConfig(d_model=768, num_heads=12, num_blocks=12, context_length=1024, vocab_size=50257)
SCIFI_SHAPE = ModelConfig(d_model=512, num_heads=8, num_blocks=12, context_length=128, vocab_size=100256)
PRESETS = ("greedy", "balanced")
ROUNDS = 2
PROMPT_TOKENS = 24
PASSAGES = 4


def _timed(model, prompt: list[int], params, seed: int, corpus=None) -> tuple[list[int], float, DraftStats]:
    stats = DraftStats(params.draft)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    started = time.perf_counter()
    ids = [token for token, _ in generate_steps(model, prompt, params, generator, corpus_index=corpus,
                                                draft_stats=stats)]
    return ids, len(ids) / (time.perf_counter() - started), stats


def compare(model, cases: list[tuple[list[int], object]], params) -> dict:
    """Rates without and with drafting over `cases` (prompt, training-text index), rounds interleaved; the
    best round of each; whether every drafted text equals its plain one."""
    plain, drafted = params.with_changes(draft="off"), params.with_changes(draft="auto")
    best = {"off": 0.0, "auto": 0.0}
    same, totals, new_tokens = True, DraftStats("auto"), 0
    for round_ in range(ROUNDS):
        elapsed = {"off": 0.0, "auto": 0.0}
        count = 0
        for seed, (prompt, corpus) in enumerate(cases):
            expected, rate_off, _ = _timed(model, prompt, plain, seed)
            got, rate_on, stats = _timed(model, prompt, drafted, seed, corpus)
            same = same and got == expected
            elapsed["off"] += len(expected) / rate_off
            elapsed["auto"] += len(got) / rate_on
            count += len(got)
            if round_ == 0:
                totals.drafted += stats.drafted
                totals.accepted += stats.accepted
                totals.passes += stats.passes
                new_tokens += len(got)
        for key in best:
            best[key] = max(best[key], count / elapsed[key])
    return {"off_tok_s": round(best["off"], 1), "draft_tok_s": round(best["auto"], 1),
            "ratio": round(best["auto"] / best["off"], 2), "same_text": same,
            **{k: v for k, v in totals.as_json(new_tokens).items() if k in ("acceptance", "tokens_per_pass")}}


def _reciting(model, prompts: list[list[int]], params, build_index) -> list[tuple[list[int], object]]:
    """Random weights recite nothing: their own plain continuation stands in for the text they recite."""
    cases = []
    for seed, prompt in enumerate(prompts):
        own, _, _ = _timed(model, prompt, params.with_changes(draft="off"), seed)
        cases.append((prompt, build_index(random_ids(200, model.config.vocab_size, 50 + seed) + prompt + own, [0])))
    return cases


def _trained_rows(model_arg, corpus_arg, tokens: int, report: list, figures: dict, presets=PRESETS,
                  note: str = "") -> None:
    from tfchat.core.commands.overlap import open_training_text
    from tfchat.core.engine.in_process import Engine

    from tfchat.core.system.paths import resolve_model_path

    engine = Engine.load(resolve_model_path(model_arg), "cpu")
    try:
        corpus = open_training_text(model_arg, corpus_arg)
        ids = corpus.index.tokens
        step = len(ids) // (PASSAGES + 1)
        grounded = [(list(ids[step * (i + 1): step * (i + 1) + PROMPT_TOKENS]), corpus.index) for i in range(PASSAGES)]
        ungrounded = [(random_ids(PROMPT_TOKENS, engine.config.vocab_size, 7 + i), None) for i in range(PASSAGES)]
        catalog = load_presets()
        # Inside the window: past it, under the book's crop, every token has its own window and nothing is drafted.
        in_window = engine.config.context_length - PROMPT_TOKENS - 1
        for preset in presets:
            params = catalog.get(preset).params.with_changes(max_new_tokens=min(tokens, in_window))
            for label, cases in (("grounded", grounded), ("ungrounded", ungrounded)):
                _row(f"book config, {Path(str(engine.path)).name}, {label}, {preset}{note}",
                     compare(engine.model, cases, params), report, figures)
    finally:
        engine.close()


def _random_rows(name: str, config: ModelConfig, tokens: int, report: list, figures: dict,
                 dtypes=(torch.float32, torch.float16), presets=PRESETS, note: str = "") -> None:
    from tfchat.core.corpus.index_build import build_index

    torch.manual_seed(0)
    state = BookModel(config).state_dict()
    catalog = load_presets()
    for dtype in dtypes:
        weights = {key: value.to(dtype) for key, value in state.items()}
        device = torch.device("cpu")
        model = FastModel(config, weights, device, helper_for(device))
        try:
            prompts = [random_ids(PROMPT_TOKENS, config.vocab_size, 11 + i) for i in range(2)]
            for preset in presets:
                params = catalog.get(preset).params.with_changes(max_new_tokens=tokens)
                for label, cases in (("grounded (reciting)", _reciting(model, prompts, params, build_index)),
                                     ("ungrounded", [(prompt, None) for prompt in prompts])):
                    _row(f"{name}, {str(dtype).removeprefix('torch.')}, {label}, {preset}{note}",
                         compare(model, cases, params), report, figures)
        finally:
            if model.helper is not None:
                model.helper.close()


def _row(label: str, result: dict, report: list, figures: dict) -> None:
    report.append((label, f"{result['off_tok_s']:7.1f} -> {result['draft_tok_s']:7.1f} tok/s  x{result['ratio']:.2f}  "
                          f"accepted {result['acceptance'] * 100:4.1f}%  {result['tokens_per_pass']:.2f} tok/pass  "
                          f"{'same text' if result['same_text'] else 'TEXT DIFFERS'}"))
    figures[label] = result
    print(f"{label}: {report[-1][1]}", flush=True)  # as it goes: the whole run takes minutes


def run_drafting_bench(model_arg: str | None, corpus_arg: str | None, tokens: int, shapes: bool = True) -> int:
    report: list[tuple[str, str]] = []
    figures: dict = {}
    _trained_rows(model_arg, corpus_arg, tokens, report, figures)
    if shapes:
        _random_rows("scifi 140M", SCIFI_SHAPE, tokens, report, figures)
        _random_rows("GPT-2 small shape", GPT2_SMALL_SHAPE, tokens, report, figures)
    with busy_neighbour():
        _trained_rows(model_arg, corpus_arg, tokens, report, figures, ("greedy",), ", busy neighbour")
        if shapes:
            _random_rows("scifi 140M", SCIFI_SHAPE, tokens, report, figures, (torch.float16,), ("greedy",),
                         ", busy neighbour")
    print()
    print_table(report, figures)
    return 0 if all(result["same_text"] for result in figures.values()) else 1
