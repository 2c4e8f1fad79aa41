"""What 8-bit weights cost (`tfchat score --weights int8`): the same text scored by the exact model and
by the rounded one, window for window as `score` goes: each one's loss, and how far the rounded
model's next-token distributions are from the exact ones (mean KL per token, the top token kept)."""
from __future__ import annotations

import math

import torch

from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.inspection import logit_passes


@torch.inference_mode()
def weights_cost(exact: FastModel, rounded: FastModel, ids: list[int]) -> dict:
    """Figures over every token of `ids` after the first: losses in nats, KL(exact || rounded) in nats."""
    count, exact_nll, rounded_nll, kl_sum, kl_max, same_top = 0, 0.0, 0.0, 0.0, 0.0, 0
    for (p_logits, targets, _), (q_logits, _, _) in zip(logit_passes(exact, ids), logit_passes(rounded, ids)):
        if not len(targets):
            continue
        p, q = torch.log_softmax(p_logits.float(), dim=-1), torch.log_softmax(q_logits.float(), dim=-1)
        kl = (p.exp() * (p - q)).sum(dim=-1).clamp(min=0)
        count += len(targets)
        exact_nll -= float(p.gather(1, targets[:, None]).sum())
        rounded_nll -= float(q.gather(1, targets[:, None]).sum())
        kl_sum, kl_max = kl_sum + float(kl.sum()), max(kl_max, float(kl.max()))
        same_top += int((p.argmax(dim=-1) == q.argmax(dim=-1)).sum())
    exact_loss, rounded_loss = exact_nll / count, rounded_nll / count
    return {"tokens": count, "exact_loss": round(exact_loss, 6), "loss": round(rounded_loss, 6),
            "exact_perplexity": round(math.exp(min(exact_loss, 700.0)), 4),
            "perplexity": round(math.exp(min(rounded_loss, 700.0)), 4),
            "mean_kl": round(kl_sum / count, 6), "max_kl": round(kl_max, 6),
            "same_top_token": round(same_top / count, 4)}
