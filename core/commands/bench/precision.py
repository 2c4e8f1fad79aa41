"""bench's precision figures: the same weights stored in float32, float16 and bfloat16, decoded in turn.

A `.half()` checkpoint's weights are read as float16 where that is exact (`core.nn.block_products`):
half the bytes a token. The rounds are interleaved (medians), so a noisy machine slows all three alike.
"""
from __future__ import annotations

import statistics

import torch

from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.system.helper_thread import HelperThread

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ROUNDS = 3


def precision_figures(config: ModelConfig, state: dict, device: torch.device, helper: HelperThread | None,
                      decode_rate_of, bandwidth: float) -> dict:
    """tok/s for each stored dtype, its speed against float32 and its fraction of its own bandwidth limit.

    `decode_rate_of(model, seed)` is bench's in-window decode rate of a model."""
    if device.type != "cpu":
        return {}  # on a GPU every dtype is read as stored: nothing here to compare
    models = {name: FastModel(config, {k: v.to(dtype) for k, v in state.items()}, device, helper)
              for name, dtype in DTYPES.items()}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():
        decode_rate_of(model, 0)  # warm-up: each model traces its step once
    for seed in range(ROUNDS):
        for name, model in models.items():
            rates[name].append(decode_rate_of(model, seed))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    figures = {}
    for name, model in models.items():
        limit = bandwidth / model.weight_bytes_per_token()
        figures[f"{name}_tokens_per_s"] = round(medians[name], 2)
        figures[f"{name}_vs_float32"] = round(medians[name] / medians["float32"], 2)
        figures[f"{name}_fraction_of_limit"] = round(medians[name] / limit, 3)
        figures[f"{name}_limit_tokens_per_s"] = round(limit, 2)
        figures[f"{name}_bytes_per_token"] = model.weight_bytes_per_token()
    return figures


def precision_rows(r: dict) -> list[tuple[str, str]]:
    if "float16_tokens_per_s" not in r:
        return []
    return [(f"stored as {name} (same weights)",
             f"{r[f'{name}_tokens_per_s']:.1f} tok/s ({r[f'{name}_vs_float32']:.2f}x float32; "
             f"{r[f'{name}_bytes_per_token'] / 2**20:.0f} MiB a token, {r[f'{name}_fraction_of_limit'] * 100:.0f}% "
             f"of its ceiling, {r[f'{name}_limit_tokens_per_s']:.0f} tok/s)") for name in DTYPES]
