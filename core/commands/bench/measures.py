"""What every bench measures with: the weights to run, token rates, the bandwidth limit, and the report."""
from __future__ import annotations

import json
import resource
import sys
import time

import torch

from tfchat.core.decode.generation import generate_steps
from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.paths import resolve_model_path

BOOK_CONFIG = ModelConfig(d_model=80, num_heads=4, num_blocks=6, context_length=128, vocab_size=100256)
# The repository's scifi-demo model, 140,573,600 parameters: what readers who train longer have.
SCIFI_CONFIG = ModelConfig(d_model=512, num_heads=8, num_blocks=12, context_length=128, vocab_size=100256)
CONFIGS = {"book": BOOK_CONFIG, "scifi": SCIFI_CONFIG}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_weights(model_arg: str | None, config_name: str = "book"):
    if model_arg is None:
        torch.manual_seed(0)
        config = CONFIGS[config_name]
        return f"random {config_name}-config weights", config, BookModel(config).state_dict()
    checkpoint = load_checkpoint(resolve_model_path(model_arg))
    return str(checkpoint.path), checkpoint.config, checkpoint.state_dict


def random_ids(n: int, vocab: int, seed: int) -> list[int]:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def book_tokens_per_s(book: BookModel, config: ModelConfig, device, n: int) -> float:
    idx = torch.tensor([random_ids(config.context_length, config.vocab_size, 1)], device=device)
    book.generate(idx, 2)  # warm-up
    sync(device)
    start = time.perf_counter()
    book.generate(idx, n, temperature=1.0)
    sync(device)
    return n / (time.perf_counter() - start)



def engine_step_times(model: FastModel, prompt: list[int], n: int, seed: int = 0, top_logprobs: int = 0,
                      params: SamplingParams | None = None) -> list[float]:
    """Seconds from the call to each new token; index 0 is the time to first token."""
    params = (params or SamplingParams(temperature=1.0)).with_changes(max_new_tokens=n)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    start = time.perf_counter()
    times = []
    for _ in generate_steps(model, prompt, params, generator, top_logprobs=top_logprobs):  # ids on the host: synced
        times.append(time.perf_counter() - start)
    return times


def decode_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


def in_window_rate(model: FastModel, n: int, rounds: int = 3) -> float:
    """The best of `rounds` decode rates over the window's last `n` positions (the KV cache filling)."""
    C, V = model.config.context_length, model.config.vocab_size
    return max(decode_rate(engine_step_times(model, random_ids(C - n, V, 3), n + 1, seed=s)) for s in range(rounds))


def past_window_rate(model: FastModel, n: int, rounds: int = 3) -> float:
    """The same, `n` tokens past a full window: each step recomputes the cropped window, as the book does."""
    C, V = model.config.context_length, model.config.vocab_size
    return max(decode_rate(engine_step_times(model, random_ids(C, V, 4), n + 1, seed=s)) for s in range(rounds))


@torch.inference_mode()
def matvec_bandwidth(model: FastModel, repeats: int = 200) -> float:
    """Bytes/s streaming the output layer, the largest read of a decode step, as the engine computes it."""
    x = torch.randn(model.config.d_model, device=model.device)
    for _ in range(10):
        model.output_layer(x)
    sync(model.device)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats // 5):
            model.output_layer(x)
        sync(model.device)
        samples.append((time.perf_counter() - start) / (repeats // 5))
    return model.output_layer_bytes() / min(samples)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def print_table(rows: list[tuple[str, str]], figures: dict) -> None:
    """A bench's report: aligned `name  value` lines for people, then one JSON line for scripts."""
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    sys.stdout.flush()
