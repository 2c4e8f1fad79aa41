"""`tfchat score`: how surprised the model is by a text, token by token, and its loss and perplexity.

Each token after the first is scored given the up-to-context_length tokens before it, as the
book's loop crops; the loss is the mean negative log-probability in nats, the number the
book's training loop prints. Several --model give one row each, to compare checkpoints.
"""
from __future__ import annotations

import json
import math
import sys
import time

from tfchat.core.errors import EXIT_OK, PromptError
from tfchat.core.nn.inside_data import shown_perplexity
from tfchat.core.settings.weights_choice import weights_label
from tfchat.core.system.bounded_read import decoded, read_bounded
from tfchat.core.system.runtime import apply_threads

MAX_TEXT_BYTES = 64 * 2**20  # a text beyond this is not one to score in a terminal
# The app keeps every scored token with its alternatives to colour and walk them (about 1 KB a token).
MAX_SHOWN_TEXT_BYTES = 2 * 2**20


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


def read_text(path: str | None, limit: int = MAX_TEXT_BYTES) -> str:
    """The file's text, or standard input's for '-' or none, within `limit` bytes."""
    data = read_bounded(path, limit, "text to score")
    return decoded(data, "standard input" if path in (None, "-") else path)


def run_score(args) -> int:
    from tfchat.core.engine.in_process import Engine
    from tfchat.core.system.paths import resolve_model_path

    text = read_text(args.file)
    off = parse_heads(args.ablate)
    models = [args.model] if isinstance(args.model, str) else args.model or [None]  # `tfchat --model X score`
    apply_threads(args.threads)
    # Progress on a terminal, where it does not tangle with the token lines; nothing extra when piped.
    shows_progress = sys.stderr.isatty() and (len(models) > 1 or not sys.stdout.isatty())
    weights = getattr(args, "weights", "exact")
    for model_arg in models:
        engine = Engine.load(resolve_model_path(model_arg), args.device, weights)
        copied = copied_from_training_text(args, engine, text)
        started = time.perf_counter()
        total, passes = engine.score_passes(text, off)
        progress = Progress(total, started) if shows_progress else None
        count, logprobs = 0, 0.0
        for scored in passes:  # a pass at a time: a long text in flat memory, printed as it goes
            if len(models) == 1:
                print_tokens(scored, count, engine.encoding, args.format)
            count += len(scored)
            logprobs += sum(token.logprob for token in scored)
            if progress is not None:
                progress.show(count)
        if progress is not None:
            progress.clear()
        seconds = time.perf_counter() - started
        loss = -logprobs / count
        perplexity = math.exp(min(loss, 700.0))  # finite: exp overflows past 709 nats
        rate = count / seconds if seconds > 0 else 0.0
        summary = {"tokens": count, "loss": round(loss, 6), "perplexity": round(perplexity, 4),
                   "seconds": round(seconds, 3), "tokens_per_s": round(rate, 1), **(copied or {})}
        beside = f", {copied['copied_fraction']:.1%} copied from the corpus, longest span {copied['longest']}" \
            if copied else ""
        cost = weights_cost_against_exact(engine, text, args.device) if weights != "exact" else None
        if cost is not None:
            summary = {**summary, "weights": weights, **{k: v for k, v in cost.items() if k.startswith(
                ("exact_", "mean_kl", "max_kl", "same_top"))}}
            beside += (f"; {weights_label(weights)}: the exact weights score loss {cost['exact_loss']:.4f} "
                       f"(perplexity {shown_perplexity(cost['exact_perplexity'])}), mean KL {cost['mean_kl']:.5f} "
                       f"nats a token (max {cost['max_kl']:.4f}), same top token {cost['same_top_token']:.1%}")
        if len(models) > 1:
            summary = {"model": str(engine.path), **summary}
        if args.format == "jsonl":
            print(json.dumps(summary, allow_nan=False))  # jsonl is JSON: a NaN was refused before it came here
        elif len(models) > 1:
            print(f"{engine.path}: {count} tokens, loss {loss:.4f} nats, perplexity {shown_perplexity(perplexity)} "
                  f"({rate:,.0f} tok/s){beside}")
        else:
            print(f"{count} tokens, loss {loss:.4f} nats, perplexity {shown_perplexity(perplexity)} "
                  f"({seconds:.2f} s, {rate:,.0f} tok/s)" + (f", heads off: {args.ablate}" if off else "") + beside)
        engine.close()
    return EXIT_OK


def weights_cost_against_exact(engine, text: str, device: str) -> dict:
    """Loads the same checkpoint with its exact weights and scores the text with both (`core.nn.weights_cost`)."""
    from tfchat.core.engine.in_process import Engine
    from tfchat.core.nn.weights_cost import weights_cost

    exact = Engine.load(engine.path, device)
    try:
        return weights_cost(exact.model, engine.model, engine.encode(text))
    finally:
        exact.close()


def copied_from_training_text(args, engine, text: str) -> dict | None:
    """With --corpus FILE: the share of the text inside spans of 8+ tokens that occur in the training text,
    and the longest."""
    if not getattr(args, "corpus", None):
        return None
    from tfchat.core.corpus.copied_spans import DEFAULT_MIN_TOKENS
    from tfchat.core.corpus.training_text import TrainingText, corpus_path_for

    corpus = TrainingText.open(corpus_path_for(args.corpus, None), engine.encoding)
    return corpus.overlap(engine.encoding.encode(text, disallowed_special=()), DEFAULT_MIN_TOKENS).figures()


def print_tokens(scored, before: int, encoding, form: str) -> None:
    """One line per scored token: numbered in text, an object each in jsonl."""
    from tfchat.core.engine.tokenizer import inline_text, token_text

    for index, token in enumerate(scored, before + 1):
        piece, data = token_text(encoding, token.id)
        if form == "jsonl":
            print(json.dumps({"id": token.id, "token": piece, "bytes": data, "logprob": round(token.logprob, 6),
                              "rank": token.rank}, allow_nan=False))
        else:
            print(f"{index:>6}  {token.logprob:>9.4f}  rank {token.rank:<6}  '{inline_text(piece)}'")


class Progress:
    """`scoring: done/total tokens, rate tok/s` on standard error, rewritten in place at most 5 times a second."""

    def __init__(self, total: int, started: float):
        self.total, self.started, self.shown_at = total, started, 0.0

    def show(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.shown_at < 0.2 and done < self.total:
            return
        self.shown_at = now
        rate = done / (now - self.started) if now > self.started else 0.0
        sys.stderr.write(f"\rscoring: {done:,}/{self.total:,} tokens, {rate:,.0f} tok/s")
        sys.stderr.flush()

    @staticmethod
    def clear() -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
