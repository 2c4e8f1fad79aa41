"""The peer a reader would otherwise pick: transformers' `generate()` with its KV cache, on the same shape.

No transformers architecture is the book's model, but GPT-2 with ReLU and an untied head does the same
work per token (one embedding row, the same blocks, a D x V output layer; its learned positions and the
missing output bias cost nothing measurable), so its speed is the book model's speed in transformers.
Weights are random: speed does not depend on their values. Both sides decode the same prompt length and
the same number of new tokens at temperature 1, timed end to end, in interleaved rounds (medians), so a
noisy machine slows both alike; then again beside a process burning a core, as on a shared box.
"""
from __future__ import annotations

import importlib.util
import os
import statistics
import time

import torch

from tfchat.core.nn.model_config import ModelConfig

ROUNDS = 5
BUSY_ROUNDS = 3


def transformers_installed() -> bool:
    return importlib.util.find_spec("transformers") is not None


def peer_model(config: ModelConfig, device: torch.device):
    """A transformers GPT-2 of `config`'s shape, with ReLU and an untied head, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()  # its notes on generation flags are not the bench's business
    peer_config = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.context_length, n_embd=config.d_model,
        n_layer=config.num_blocks, n_head=config.num_heads, n_inner=4 * config.d_model,
        activation_function="relu", tie_word_embeddings=False,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    return GPT2LMHeadModel(peer_config).to(device).eval()


def _default_threads() -> int:
    """The threads torch gives a plain script here (every core this process may use), not tfchat's
    own choice of one compute thread beside its helper."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def peer_seconds(model, prompt: list[int], n: int, seed: int) -> float:
    """Seconds for transformers to sample `n` tokens after `prompt` (prefill included), its cache on."""
    ids = torch.tensor([prompt], device=model.device)
    torch.manual_seed(seed)
    ours = torch.get_num_threads()
    torch.set_num_threads(_default_threads())
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                 do_sample=True, temperature=1.0, top_k=0, top_p=1.0, use_cache=True,
                                 pad_token_id=0)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(ours)
    assert out.shape[1] == len(prompt) + n, "transformers stopped early"
    return seconds


def folder_peer(folder, device: torch.device):
    """transformers' own model of a GPT-2 folder: the very weights tfchat runs."""
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    return GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).to(device).eval()


def compare_with_peer(config: ModelConfig, device: torch.device, prompt: list[int], n: int,
                      tfchat_seconds, model=None, described: str = "GPT-2 of this shape (ReLU, untied head)") -> dict:
    """tfchat against transformers on the same prompt and token count, interleaved.

    `tfchat_seconds(seed)` times tfchat's run of the same work, end to end; `model` is the peer's model
    (default: random weights of `config`'s shape).
    """
    import transformers

    from tfchat.core.commands.bench.neighbour import busy_neighbour

    model = model if model is not None else peer_model(config, device)
    peer_seconds(model, prompt, 2, seed=0)  # warm-up: its first call builds caches and picks kernels
    tfchat_seconds(0)

    def rates(rounds: int) -> tuple[float, float]:
        ours, theirs = [], []
        for seed in range(rounds):
            ours.append(tfchat_seconds(seed))
            theirs.append(peer_seconds(model, prompt, n, seed))
        return n / statistics.median(ours), n / statistics.median(theirs)

    ours_rate, theirs_rate = rates(ROUNDS)
    with busy_neighbour():  # a shared box: torch's own threads wait for a core the neighbour holds
        busy_ours, busy_theirs = rates(BUSY_ROUNDS)
    return {
        "peer": f"transformers {transformers.__version__} generate(), {described}",
        "peer_threads": _default_threads(),
        "peer_prompt_tokens": len(prompt),
        "peer_tokens": n,
        "peer_tfchat_tokens_per_s": round(ours_rate, 2),
        "peer_tokens_per_s": round(theirs_rate, 2),
        "peer_ratio": round(ours_rate / theirs_rate, 2),
        "peer_busy_tfchat_tokens_per_s": round(busy_ours, 2),
        "peer_busy_tokens_per_s": round(busy_theirs, 2),
        "peer_busy_ratio": round(busy_ours / busy_theirs, 2),
    }
