"""`tfchat bench --batch N`: aggregate tokens/s of N rows decoded together against one row.

In the window (the batch's use: short prompts compared side by side), each
figure the median of interleaved runs, so a noisy machine slows all alike.
"""
from __future__ import annotations

import statistics
import time

import torch

from tfchat.core.commands.bench.measures import decode_rate, engine_step_times, load_weights, print_table, random_ids
from tfchat.core.decode.batching import BatchRun, Row
from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.errors import TfchatError
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.device import resolve_device
from tfchat.core.system.helper_thread import helper_for

RUNS = 5


def batch_rate(model: FastModel, rows: int, prompt_length: int, n: int, seed: int) -> float:
    """Aggregate decode tokens/s of `rows` rows at temperature 1, after their prefill step."""
    params = SamplingParams(temperature=1.0, max_new_tokens=n + 1)
    vocab = model.config.vocab_size
    batch = [Row(random_ids(prompt_length, vocab, seed + r), params, torch.Generator().manual_seed(seed + r))
             for r in range(rows)]
    steps = iter(BatchRun(model, batch))
    next(steps)  # the prefill step: its cost is the time to first token, not the decode rate
    start = time.perf_counter()
    tokens = sum(len(step) for step in steps)
    return tokens / (time.perf_counter() - start)


def run_batch_bench(model_arg: str | None, device_name: str, rows: int, tokens: int) -> int:
    if not 2 <= rows <= MAX_ROWS:
        raise TfchatError(f"--batch takes 2 to {MAX_ROWS} rows, not {rows}")
    device = resolve_device(device_name)
    source, config, state = load_weights(model_arg)
    model = FastModel(config, state, device, helper_for(device))
    n = max(2, min(tokens, config.context_length // 2))
    prompt_length = config.context_length - n - 1  # every step stays in the window
    for size in (1, rows):  # warm-up: each batch size traces its step once
        batch_rate(model, size, prompt_length, 3, seed=0)
    single, one_row, many = [], [], []
    for run in range(RUNS):
        prompt = random_ids(prompt_length, config.vocab_size, 100 + run)
        single.append(decode_rate(engine_step_times(model, prompt, n + 1, seed=run)))
        one_row.append(batch_rate(model, 1, prompt_length, n, seed=10 * run))
        many.append(batch_rate(model, rows, prompt_length, n, seed=10 * run))
    r = {"model": source, "device": str(device), "rows": rows, "tokens_per_row": n,
         "single_generation_tokens_per_s": round(statistics.median(single), 1),
         "batch_of_1_tokens_per_s": round(statistics.median(one_row), 1),
         "batch_tokens_per_s": round(statistics.median(many), 1)}
    r["ratio_vs_one_row"] = round(r["batch_tokens_per_s"] / r["batch_of_1_tokens_per_s"], 2)
    r["ratio_vs_single_generation"] = round(r["batch_tokens_per_s"] / r["single_generation_tokens_per_s"], 2)
    table = [
        ("model", source),
        ("device", str(device)),
        ("in the window, temperature 1", f"{n} tokens a row, median of {RUNS} interleaved runs"),
        ("one generation (the chat's path)", f"{r['single_generation_tokens_per_s']:.1f} tok/s"),
        ("batch of 1 row", f"{r['batch_of_1_tokens_per_s']:.1f} tok/s"),
        (f"batch of {rows} rows, all rows together",
         f"{r['batch_tokens_per_s']:.1f} tok/s  ({r['ratio_vs_one_row']:.2f}x one row, "
         f"{r['ratio_vs_single_generation']:.2f}x one generation)"),
    ]
    print_table(table, r)
    return 0
