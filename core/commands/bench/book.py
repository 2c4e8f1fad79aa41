"""`tfchat bench`: the engine against the book's loop, on one checkpoint, in one run.

Figures, all at batch 1 and temperature 1:
- book: the chapter's `generate` at a full window (every step recomputes C positions);
- cached: the engine decoding with its KV cache filling the last part of the window;
- cropped: the engine past the window, where it recomputes the cropped window as the book does;
- ttft: prompt of 100 tokens (or the window less one) to the first new token;
- limit: tokens/s if each step only read the weights once, at the machine's read bandwidth
  (`bench.read_bandwidth`: a streaming read beyond the caches, every core and one);
- busy: cached and cropped again while another process burns one core, as on a shared box;
- balanced: cached with the app's default preset, against temperature 1;
- trace: cached with each token's logprob and top 10 alternatives, against the same run without,
  interleaved (medians), as the cost of `--logprobs 10` and the app's probability view;
- precision: the same weights stored in float32, float16 and bfloat16 (`bench.precision`);
- peer: when transformers is installed, its `generate()` on the same shape (`bench.peer`).
"""
from __future__ import annotations

import statistics

import torch

from tfchat.core.commands.bench.book_loop import book_tokens_per_s_plain_process
from tfchat.core.commands.bench.measures import (book_tokens_per_s, decode_rate, engine_step_times, in_window_rate,
                                                 load_weights, matvec_bandwidth, past_window_rate, peak_memory_mb,
                                                 print_table, random_ids)
from tfchat.core.commands.bench.neighbour import busy_neighbour
from tfchat.core.commands.bench.peer import compare_with_peer, transformers_installed
from tfchat.core.commands.bench.precision import precision_figures, precision_rows
from tfchat.core.commands.bench.read_bandwidth import ceiling_figures, ceiling_rows
from tfchat.core.commands.bench.readers import reader_figures, reader_rows
from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.device import resolve_device
from tfchat.core.system.helper_thread import helper_for
from tfchat.core.system.install_hint import install_command
from tfchat.core.system.paths import resolve_model_path

TRACE_TOP = 10
# The app's default preset, for the cost of sampling with a penalty and filters.
BALANCED = SamplingParams(temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.1)


def measure(model_arg: str | None, device_name: str, tokens: int, config_name: str = "book") -> dict:
    device = resolve_device(device_name)
    source, config, state = load_weights(model_arg, config_name)
    C, V = config.context_length, config.vocab_size
    model = FastModel(config, state, device, helper_for(device))
    book = BookModel(config).to(device).eval()
    # An exported folder has no causal masks (they are not weights): the book's model keeps its own.
    missing, unexpected = book.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    assert not unexpected and all(k.endswith(".mask") for k in missing), (missing, unexpected)
    n = max(2, min(tokens, C // 2))

    book_rate = book_tokens_per_s(book, config, device, n)
    plain_book_rate = book_tokens_per_s_plain_process(config, device, n)

    ttft_prompt = random_ids(min(100, C - 1), V, 2)
    engine_step_times(model, ttft_prompt, 2)  # warm-up
    ttft = statistics.median(engine_step_times(model, ttft_prompt, 1, seed=s)[0] for s in range(7))

    def shifted_rate() -> float:
        """Past the window with `window: shift`, over two of its shifts (a prefill of C/2 every C/2 tokens)."""
        shift = SamplingParams(temperature=1.0, window="shift")
        return max(decode_rate(engine_step_times(model, random_ids(C, V, 4), C + 1, seed=s, params=shift))
                   for s in range(3))

    # The first step past the window traces its fill once per process (TorchScript): timed on its own.
    first_past = engine_step_times(model, random_ids(C, V, 5), 3)[0]
    cached, cropped, shifted = in_window_rate(model, n), past_window_rate(model, n), shifted_rate()
    trace_prompt = random_ids(C - n, V, 3)
    untraced_runs, traced_runs, balanced_runs = [], [], []
    for s in range(5):  # interleaved: a noisy machine slows all three alike
        untraced_runs.append(decode_rate(engine_step_times(model, trace_prompt, n + 1, seed=s)))
        traced_runs.append(decode_rate(engine_step_times(model, trace_prompt, n + 1, seed=s, top_logprobs=TRACE_TOP)))
        balanced_runs.append(decode_rate(engine_step_times(model, trace_prompt, n + 1, seed=s, params=BALANCED)))
    untraced, traced = statistics.median(untraced_runs), statistics.median(traced_runs)
    balanced = statistics.median(balanced_runs)
    with busy_neighbour():
        busy_cached, busy_cropped = in_window_rate(model, n), past_window_rate(model, n)
    peer = {}
    if transformers_installed():
        peer_prompt = random_ids(C - n, V, 6)
        peer = compare_with_peer(config, device, peer_prompt, n,
                                 lambda seed: engine_step_times(model, peer_prompt, n, seed=seed)[-1])

    ceiling = ceiling_figures(model, cached, matvec_bandwidth(model))
    readers = reader_figures(model, lambda: in_window_rate(model, n, rounds=1))
    limit = ceiling["limit_tokens_per_s"]
    precision = precision_figures(
        config, state, device, model.helper,
        lambda other, seed: decode_rate(engine_step_times(other, random_ids(C - n, V, 3), n + 1, seed=seed)),
        ceiling["read_bandwidth_gb_s"] * 1e9)
    return {
        "model": source, "device": str(device), "d_model": config.d_model, "num_heads": config.num_heads,
        "num_blocks": config.num_blocks, "context_length": C, "vocab_size": V, "tokens_timed": n,
        "book_tokens_per_s": round(book_rate, 2),
        "engine_tokens_per_s": round(cached, 2),
        "ratio": round(cached / book_rate, 2),
        "book_plain_process_tokens_per_s": round(plain_book_rate, 2) if plain_book_rate else None,
        "ratio_vs_plain_process": round(cached / plain_book_rate, 2) if plain_book_rate else None,
        "ratio_ceiling": round(limit / book_rate, 2),
        "engine_cropped_tokens_per_s": round(cropped, 2),
        "engine_shift_tokens_per_s": round(shifted, 2),
        "shift_fraction_of_in_window": round(shifted / cached, 3),
        "cropped_ratio": round(cropped / book_rate, 2),
        "cropped_ratio_vs_plain_process": round(cropped / plain_book_rate, 2) if plain_book_rate else None,
        "ttft_ms": round(ttft * 1000, 2), "ttft_prompt_tokens": len(ttft_prompt),
        "first_past_window_token_ms": round(first_past * 1000, 1),
        **ceiling, **readers,
        "threads": torch.get_num_threads(),
        "helper_thread": model.helper is not None,
        "busy_engine_tokens_per_s": round(busy_cached, 2),
        "busy_fraction_of_idle": round(busy_cached / cached, 3),
        "busy_engine_cropped_tokens_per_s": round(busy_cropped, 2),
        "busy_cropped_fraction_of_idle": round(busy_cropped / cropped, 3),
        "balanced_tokens_per_s": round(balanced, 2),
        "balanced_cost": round(untraced / balanced - 1, 3),
        "untraced_tokens_per_s": round(untraced, 2),
        "traced_tokens_per_s": round(traced, 2),
        "trace_cost": round(1 - traced / untraced, 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        **precision,
        **peer,
    }


def run_bench(model_arg: str | None, device_name: str, tokens: int, config_name: str = "book") -> int:
    if model_arg is not None:
        checkpoint = load_checkpoint(resolve_model_path(model_arg))
        if checkpoint.config.family == "gpt2":  # no book's loop to compare: transformers on the folder instead
            from tfchat.core.commands.bench.gpt2 import run_gpt2_bench

            return run_gpt2_bench(checkpoint, device_name, tokens)
    r = measure(model_arg, device_name, tokens, config_name)
    rows = [
        ("model", r["model"]),
        ("device", r["device"]),
        ("config", f"D={r['d_model']} H={r['num_heads']} L={r['num_blocks']} C={r['context_length']} V={r['vocab_size']}"),
        ("book loop, full window (this process)", f"{r['book_tokens_per_s']:.1f} tok/s"),
        ("book loop, plain Python process", f"{r['book_plain_process_tokens_per_s'] or 0:.1f} tok/s"),
        ("engine, KV cache at the window's end",
         f"{r['engine_tokens_per_s']:.1f} tok/s  ({r['ratio']:.1f}x the book here, "
         f"{r['ratio_vs_plain_process'] or 0:.1f}x in a plain process)"),
        ("engine, past the window (cropped window)",
         f"{r['engine_cropped_tokens_per_s']:.1f} tok/s  ({r['cropped_ratio']:.1f}x the book here, "
         f"{r['cropped_ratio_vs_plain_process'] or 0:.1f}x in a plain process)"),
        ("engine, past the window with window: shift (not the book's text)",
         f"{r['engine_shift_tokens_per_s']:.1f} tok/s  ({r['shift_fraction_of_in_window'] * 100:.0f}% of in the window)"),
        (f"time to first token ({r['ttft_prompt_tokens']}-token prompt)", f"{r['ttft_ms']:.1f} ms"),
        ("first token past the window, once a process (traces its fill)", f"{r['first_past_window_token_ms']:.0f} ms"),
        *ceiling_rows(r),
        *reader_rows(r),
        ("best ratio the ceiling allows", f"{r['ratio_ceiling']:.1f}x"),
        (f"busy neighbour on one core ({r['threads']} torch thread(s), helper: {r['helper_thread']})",
         f"{r['busy_engine_tokens_per_s']:.1f} tok/s cached ({r['busy_fraction_of_idle'] * 100:.0f}% of idle), "
         f"{r['busy_engine_cropped_tokens_per_s']:.1f} cropped ({r['busy_cropped_fraction_of_idle'] * 100:.0f}%)"),
        ("balanced preset (penalty, temperature, top-k, top-p)",
         f"{r['balanced_tokens_per_s']:.1f} tok/s ({r['balanced_cost'] * 100:+.1f}% time per token against temperature 1)"),
        (f"trace: logprob and top {TRACE_TOP} alternatives per token",
         f"{r['traced_tokens_per_s']:.1f} tok/s against {r['untraced_tokens_per_s']:.1f} without "
         f"(costs {r['trace_cost'] * 100:.1f}%)"),
        *precision_rows(r),
        ("peak memory", f"{r['peak_memory_mb']:.0f} MB"),
        _peer_row(r),
    ]
    print_table(rows, r)
    return 0


def _peer_row(r: dict) -> tuple[str, str]:
    if "peer" not in r:
        return "peer: transformers generate()", f"not installed ({install_command('export')} to compare)"
    return (f"peer: {r['peer']}",
            f"{r['peer_tokens_per_s']:.1f} tok/s against tfchat's {r['peer_tfchat_tokens_per_s']:.1f} "
            f"({r['peer_ratio']:.2f}x; {r['peer_prompt_tokens']}-token prompt + {r['peer_tokens']} new, end to end; "
            f"it on {r['peer_threads']} thread(s)); beside a busy core {r['peer_busy_tokens_per_s']:.1f} against "
            f"{r['peer_busy_tfchat_tokens_per_s']:.1f} ({r['peer_busy_ratio']:.2f}x)")
