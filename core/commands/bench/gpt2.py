"""`tfchat bench --model GPT2_FOLDER`: the engine on a transformers GPT-2 folder against transformers' own
`generate()` on the same folder, the peer such a reader would otherwise use, as a ratio in one run.

The book's loop has no GPT-2 (its figures are `bench` on a book checkpoint); the rest is as `bench`: in
the window, past it (cropped as the book does), the time to the first token, the bandwidth limit, and
the same again beside a busy neighbour.
"""
from __future__ import annotations

from tfchat.core.commands.bench.measures import (engine_step_times, in_window_rate, matvec_bandwidth, past_window_rate,
                                                 peak_memory_mb, print_table, random_ids)
from tfchat.core.commands.bench.neighbour import busy_neighbour
from tfchat.core.commands.bench.peer import compare_with_peer, folder_peer, transformers_installed
from tfchat.core.commands.bench.read_bandwidth import ceiling_figures, ceiling_rows
from tfchat.core.commands.bench.readers import reader_figures, reader_rows
from tfchat.core.nn.checkpoint import Checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.system.device import resolve_device
from tfchat.core.system.helper_thread import helper_for
from tfchat.core.system.install_hint import install_command


def run_gpt2_bench(checkpoint: Checkpoint, device_name: str, tokens: int) -> int:
    device = resolve_device(device_name)
    config = checkpoint.config
    C, V = config.context_length, config.vocab_size
    model = FastModel(config, checkpoint.state_dict, device, helper_for(device))
    n = max(2, min(tokens, C // 2))

    # Past the window every step recomputes the window (the book's crop): at GPT-2's 1024 positions that is
    # seconds a token on a CPU, so a few tokens once.
    past, rounds = (n, 3) if C <= 256 else (3, 1)

    engine_step_times(model, random_ids(C - n, V, 3), 3)  # warm-up: traces the step
    ttft = min(engine_step_times(model, random_ids(min(100, C - 1), V, 2), 1, seed=s)[0] for s in range(5))
    cached, cropped = in_window_rate(model, n), past_window_rate(model, past, rounds)
    with busy_neighbour():
        busy = in_window_rate(model, n)
    ceiling = ceiling_figures(model, cached, matvec_bandwidth(model))
    readers = reader_figures(model, lambda: in_window_rate(model, n, rounds=1))
    r = {"model": str(checkpoint.path), "family": "gpt2", "device": str(device), "d_model": config.d_model,
         "num_heads": config.num_heads, "num_blocks": config.num_blocks, "context_length": C, "vocab_size": V,
         "parameters": checkpoint.parameter_count, "engine_tokens_per_s": round(cached, 2),
         "engine_cropped_tokens_per_s": round(cropped, 2), "ttft_ms": round(ttft * 1000, 2),
         **ceiling, **readers,
         "busy_engine_tokens_per_s": round(busy, 2), "busy_fraction_of_idle": round(busy / cached, 3)}
    if transformers_installed():
        prompt = random_ids(C - n, V, 6)
        r.update(compare_with_peer(config, device, prompt, n,
                                   lambda seed: engine_step_times(model, prompt, n, seed=seed)[-1],
                                   model=folder_peer(checkpoint.path, device), described="this very folder"))
    r["peak_memory_mb"] = round(peak_memory_mb(device), 1)
    rows = [
        ("model", f"{r['model']} (GPT-2, {r['parameters']:,} parameters)"),
        ("device", r["device"]),
        ("config", f"D={config.d_model} H={config.num_heads} L={config.num_blocks} C={C} V={V} "
                   f"{config.activation}"),
        ("engine, KV cache at the window's end", f"{cached:.1f} tok/s"),
        ("engine, past the window (cropped as the book does)", f"{cropped:.1f} tok/s"),
        ("time to first token", f"{r['ttft_ms']:.1f} ms"),
        *ceiling_rows(r),
        *reader_rows(r),
        ("busy neighbour on one core", f"{busy:.1f} tok/s ({r['busy_fraction_of_idle'] * 100:.0f}% of idle)"),
    ]
    if "peer" in r:
        rows.append((f"peer: {r['peer']}", f"{r['peer_tokens_per_s']:.1f} tok/s against tfchat's "
                     f"{r['peer_tfchat_tokens_per_s']:.1f} ({r['peer_ratio']:.2f}x, end to end, "
                     f"{r['peer_prompt_tokens']}-token prompt + {r['peer_tokens']} new); beside a busy core "
                     f"{r['peer_busy_tokens_per_s']:.1f} against {r['peer_busy_tfchat_tokens_per_s']:.1f} "
                     f"({r['peer_busy_ratio']:.2f}x)"))
    else:
        rows.append(("peer: transformers generate()", f"not installed ({install_command('export')} to compare)"))
    rows.append(("peak memory", f"{r['peak_memory_mb']:.0f} MB"))
    print_table(rows, r)
    return 0
