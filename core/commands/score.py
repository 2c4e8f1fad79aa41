"""`tfchat score`: how surprised the model is by a text, token by token, and its loss and perplexity.

Each token after the first is scored given the up-to-context_length tokens before it, as the
book's loop crops; the loss is the mean negative log-probability in nats, the number the
book's training loop prints. Several --model give one row each, to compare checkpoints.
"""
from __future__ import annotations

import json
import time

from tfchat.core.errors import EXIT_OK, PromptError
from tfchat.core.nn.inside_data import shown_perplexity
from tfchat.core.system.bounded_read import decoded, read_bounded
from tfchat.core.system.runtime import apply_threads

MAX_TEXT_BYTES = 64 * 2**20  # a text beyond this is not one to score in a terminal


def parse_heads(spec: str | None) -> tuple[tuple[int, int], ...]:
    """'1.0,2.3' -> ((1, 0), (2, 3)): layers and heads counted from 0."""
    if not spec:
        return ()
    heads = []
    for part in spec.split(","):
        layer, dot, head = part.strip().partition(".")
        if not (dot and layer.isdigit() and head.isdigit()):
            raise PromptError(f"--ablate {spec}: give heads as LAYER.HEAD, comma-separated, counted from 0 (1.0,2.3)")
        heads.append((int(layer), int(head)))
    return tuple(heads)


def read_text(path: str | None) -> str:
    """The file's text, or standard input's for '-' or none, within MAX_TEXT_BYTES."""
    data = read_bounded(path, MAX_TEXT_BYTES, "text to score")
    return decoded(data, "standard input" if path in (None, "-") else path)


def run_score(args) -> int:
    from tfchat.core.engine.in_process import Engine
    from tfchat.core.engine.tokenizer import inline_text, token_text
    from tfchat.core.system.paths import resolve_model_path

    text = read_text(args.file)
    off = parse_heads(args.ablate)
    models = [args.model] if isinstance(args.model, str) else args.model or [None]  # `tfchat --model X score`
    apply_threads(args.threads)
    for model_arg in models:
        engine = Engine.load(resolve_model_path(model_arg), args.device)
        started = time.perf_counter()
        scored = engine.score(text, off)
        seconds = time.perf_counter() - started
        summary = {"tokens": len(scored.tokens), "loss": round(scored.loss, 6),
                   "perplexity": round(scored.perplexity, 4), "seconds": round(seconds, 3)}
        if len(models) > 1:
            summary = {"model": str(engine.path), **summary}
        if args.format == "jsonl":
            if len(models) == 1:
                for token in scored.tokens:
                    piece, data = token_text(engine.encoding, token.id)
                    print(json.dumps({"id": token.id, "token": piece, "bytes": data,
                                      "logprob": round(token.logprob, 6), "rank": token.rank}, allow_nan=False))
            print(json.dumps(summary, allow_nan=False))  # jsonl is JSON: a NaN was refused before it came here
        elif len(models) > 1:
            print(f"{engine.path}: {summary['tokens']} tokens, loss {scored.loss:.4f} nats, "
                  f"perplexity {shown_perplexity(scored.perplexity)}")
        else:
            for index, token in enumerate(scored.tokens, 1):
                shown = inline_text(token_text(engine.encoding, token.id)[0])
                print(f"{index:>6}  {token.logprob:>9.4f}  rank {token.rank:<6}  '{shown}'")
            print(f"{summary['tokens']} tokens, loss {scored.loss:.4f} nats, perplexity {shown_perplexity(scored.perplexity)} "
                  f"({seconds:.2f} s)" + (f", heads off: {args.ablate}" if off else ""))
        engine.close()
    return EXIT_OK
