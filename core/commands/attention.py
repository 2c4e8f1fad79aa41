"""`tfchat attention`: one head's attention over a prompt's window, as the book's Q*K plot shows it.

Queries down, keys across; the weights are softmax(mask(q @ k.T / sqrt(head_size))), each row
summing to 1, and the scores are q @ k.T / sqrt(head_size) before the mask. The window is the
prompt's last context_length tokens, as the book crops.
"""
from __future__ import annotations

import json

from tfchat.core.errors import EXIT_OK
from tfchat.core.system.runtime import apply_threads

SHADES = "·░▒▓█"  # weights in fifths: below 0.2, .. , 0.8 and above
LABEL_WIDTH = 12


def shade(weight: float) -> str:
    return SHADES[min(len(SHADES) - 1, int(weight * len(SHADES)))]


def heatmap(labels: list[str], rows: list[list[float]]) -> list[str]:
    """A shaded triangle, a row per query labelled with its token, a column per key (numbered every 5)."""
    ruler = "".join(str(k % 10) if k % 5 == 0 else " " for k in range(len(labels)))
    lines = [f"{'':>{LABEL_WIDTH}}  {ruler}"]
    for query, (label, row) in enumerate(zip(labels, rows)):
        lines.append(f"{label[:LABEL_WIDTH]:>{LABEL_WIDTH}}  " + "".join(shade(w) for w in row[: query + 1]))
    legend = "  ".join(f"{mark} {i / 5:.1f}-{(i + 1) / 5:.1f}" for i, mark in enumerate(SHADES))
    lines.append(f"{'':>{LABEL_WIDTH}}  weight: {legend}")
    return lines


def run_attention(args) -> int:
    from tfchat.core.engine.in_process import Engine
    from tfchat.core.engine.tokenizer import inline_text, token_text
    from tfchat.core.nn.inspection import check_heads
    from tfchat.core.system.paths import resolve_model_path

    apply_threads(args.threads)
    engine = Engine.load(resolve_model_path(args.model), args.device)
    check_heads(engine.model, [(args.layer, args.head)])  # one line naming the layers and heads it has
    maps = engine.attention(args.prompt)
    tokens = [token_text(engine.encoding, t)[0] for t in maps.tokens]
    weights, scores = maps.weight_rows(args.layer, args.head), maps.score_rows(args.layer, args.head)
    if args.format == "json":
        print(json.dumps({"tokens": tokens, "layer": args.layer, "head": args.head,
                          "weights": weights, "scores": scores}))
    else:
        print(f"layer {args.layer}, head {args.head}: {len(tokens)} tokens, queries down, keys across")
        for line in heatmap([inline_text(t) for t in tokens], weights):
            print(line)
    engine.close()
    return EXIT_OK
