"""The `tfchat` command: the app with no subcommand, headless tools with one.

Every error a user can cause ends here as one line on stderr and exit code 2;
Ctrl+C ends with 130 after what was generated so far has been printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from tfchat.core.decode.limits import MAX_SERVE_ROWS
from tfchat.core.errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

# torch warns at import when numpy is absent; tfchat never needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")


MODEL_HELP = "checkpoint file (default: $TFCHAT_MODEL, ./model/model.ckpt, the shipped model)"


def _add_model_args(p: argparse.ArgumentParser, top_level: bool = False, model_help: str = MODEL_HELP) -> None:
    # Subcommands repeat the options without defaults, so `tfchat --model X info` works too.
    default = {} if top_level else {"default": argparse.SUPPRESS}
    if top_level:  # the app holds several models side by side: --model a --model b
        p.add_argument("--model", action="append", help=model_help + "; repeat it to hold several (f10 switches)")
    else:
        p.add_argument("--model", help=model_help, **default)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), **({"default": "auto"} if top_level else default))
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads for the model (default: $TFCHAT_THREADS, else 1)", **default)


def _add_weights_arg(p: argparse.ArgumentParser, top_level: bool = False) -> None:
    p.add_argument("--weights", choices=("exact", "int8"), default="exact" if top_level else argparse.SUPPRESS,
                   help="exact (the checkpoint's numbers, the default) or int8: every linear's weights rounded to "
                        "8 bits at load, one scale per output channel (CPU; faster, NOT the book's model: "
                        "`tfchat score --weights int8` measures the cost)")


def _add_endpoint_args(p: argparse.ArgumentParser, top_level: bool = False) -> None:
    default = {} if top_level else {"default": argparse.SUPPRESS}
    p.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server to use instead of a checkpoint "
                   "(e.g. http://127.0.0.1:8000/v1: tfchat serve, vLLM, llama.cpp, ollama)", **default)
    p.add_argument("--api-key", metavar="KEY", help="the server's API key (default: $TFCHAT_API_KEY)", **default)
    p.add_argument("--remote-model", metavar="NAME", help="the server's model to use (default: its first)", **default)
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up on a server that sends no token for "
                   "this long (default 120)", **default)


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=argparse.SUPPRESS, help="named preset (default: balanced)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", help="stop string (repeatable)")
    p.add_argument("--window", choices=("book", "shift"),
                   help="past the context window: book (the default: crop every step, exactly as the book) or "
                        "shift (keep the window's last half when it fills, and decode on: faster, not the book's text)")
    p.add_argument("--end-of-text", choices=("stop", "ignore"),
                   help="a GPT-2's <|endoftext|>: stop there (the default) or ignore it and go on")
    p.add_argument("--draft", choices=("auto", "context", "corpus", "off"),
                   help="drafted tokens, verified exactly (faster where the text repeats itself or the training "
                        "text; never a different text): from the context and the training text (auto, the "
                        "default), one of them, or off")


def build_parser() -> argparse.ArgumentParser:
    from tfchat.core.train.config import FLOAT_KEYS, INT_KEYS, flag_name  # no torch: --help stays quick
    parser = argparse.ArgumentParser(prog="tfchat", description="Chat-style REPL for the book's GPT models.")
    _add_model_args(parser, top_level=True)
    _add_weights_arg(parser, top_level=True)
    parser.add_argument("--preset", help="preset to start with (default: the last one used, else balanced)")
    parser.add_argument("-p", "--prompt", dest="initial_prompt", metavar="TEXT",
                        help="a prompt to send as soon as the model is ready")
    parser.add_argument("--corpus", metavar="FILE",
                        help="the training text, for the overlap view (f12; default: the one the checkpoint records)")
    parser.add_argument("--resume", action="store_true",
                        help="reopen the last conversation: its exchanges, and continue mode goes on from them")
    parser.add_argument("--history", help="history database (default: in the XDG data directory)")
    _add_endpoint_args(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="continue a prompt and stream the text to stdout")
    gen.add_argument("prompt", nargs="?", help="the prompt (default: read standard input)")
    _add_model_args(gen)
    _add_weights_arg(gen)
    _add_endpoint_args(gen)
    _add_sampling_args(gen)
    gen.add_argument("--stats", action="store_true", help="print one JSON line of statistics to stderr")
    gen.add_argument("--corpus", metavar="FILE", default=argparse.SUPPRESS,
                     help="the training text: --stats adds copied_fraction and longest (spans of 8+ tokens in it)")
    gen.add_argument("--compare", metavar="PRESETS", nargs="?", const="all",
                     help="one row per preset, decoded together: names separated by commas, or 'all' (the default)")
    gen.add_argument("--prompt", dest="more_prompts", action="append", metavar="TEXT",
                     help="a prompt (repeatable: every prompt is a row, decoded together)")
    gen.add_argument("--prompts-file", metavar="FILE", help="prompts, one a line, decoded together")
    gen.add_argument("--format", choices=("text", "jsonl"), default="text",
                     help="with several rows: a header per row (text), or one JSON object per row (jsonl)")
    shown = gen.add_mutually_exclusive_group()
    shown.add_argument("--logprobs", type=int, metavar="N",
                       help="instead of text: one JSON line per new token with its logprob and the N (1-20) likeliest "
                            "alternatives (OpenAI's logprobs.content entries, plus ids)")
    shown.add_argument("--trace", action="store_true",
                       help="instead of text: the chapter's step-by-step trace (top 5 candidates, the one selected)")

    serve = sub.add_parser("serve", help="serve the model over OpenAI's HTTP API (needs the serve extra: Starlette, uvicorn)")
    _add_model_args(serve)
    _add_weights_arg(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", help="clients must send it as a bearer token (default: $TFCHAT_API_KEY)")
    serve.add_argument("--allow-no-key", action="store_true",
                       help="serve a non-loopback --host without an API key (refused otherwise)")
    serve.add_argument("--max-rows", type=int, default=MAX_SERVE_ROWS,
                       help=f"requests decoded together (1-{MAX_SERVE_ROWS})")
    serve.add_argument("--max-queue", type=int, default=64, help="requests waiting beyond those; more get 503")
    serve.add_argument("--max-tokens-limit", type=int, default=32768, metavar="N",
                       help="the most max_tokens a request may ask for (default 32768); more get 400")
    serve.add_argument("--request-timeout", type=float, metavar="SECONDS",
                       help="end a request's generation after this long, with what it has (default: no limit)")
    serve.add_argument("--read-timeout", type=float, metavar="SECONDS",
                       help="time a client has to send a request's headers, and again its body "
                            "(default 10 s and 60 s); a connection that takes longer is closed")

    info = sub.add_parser("info", help="parameter count and every tensor's name and shape")
    _add_model_args(info)

    score = sub.add_parser("score", help="each token's log-probability in a text, and the text's loss and perplexity")
    score.add_argument("file", nargs="?", help="a UTF-8 text file (default, or -: standard input)")
    score.add_argument("--model", action="append", default=argparse.SUPPRESS,
                       help=MODEL_HELP + "; repeat it for a row per model")
    score.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=argparse.SUPPRESS)
    score.add_argument("--threads", type=int, metavar="N", default=argparse.SUPPRESS)
    _add_weights_arg(score)
    score.add_argument("--format", choices=("text", "jsonl"), default="text",
                       help="jsonl: a line per token ({id, token, bytes, logprob, rank}), then a summary line")
    score.add_argument("--ablate", metavar="L.H[,L.H...]", help="switch these heads off (layers and heads from 0)")
    score.add_argument("--corpus", metavar="FILE", default=argparse.SUPPRESS,
                       help="the training text: the share of the text copied from it and the longest span, beside the loss")

    overlap = sub.add_parser("overlap", help="which spans of a text occur verbatim in the model's training text")
    overlap.add_argument("text", nargs="?", help="the text (default: read standard input)")
    _add_model_args(overlap)
    overlap.add_argument("--corpus", metavar="FILE", default=argparse.SUPPRESS,
                         help="the training text (default: the one tfchat train recorded in the checkpoint)")
    overlap.add_argument("--min-tokens", type=int, default=8, metavar="N",
                         help="the shortest span reported, in tokens (default 8)")
    overlap.add_argument("--json", action="store_true",
                         help="one object: {tokens, min_tokens, spans: [{start, end, text, occurrences, line}], "
                              "copied_fraction, longest}")

    attention = sub.add_parser("attention", help="one head's attention over a prompt's window (the book's Q*K plot)")
    attention.add_argument("prompt")
    _add_model_args(attention)
    attention.add_argument("--layer", type=int, required=True, help="counted from 0")
    attention.add_argument("--head", type=int, required=True, help="counted from 0")
    attention.add_argument("--format", choices=("text", "json"), default="text",
                           help="json: {tokens, layer, head, weights, scores}, T x T each, queries down")

    export = sub.add_parser("export", help="write the model as a Hugging Face folder (transformers, vLLM)")
    export.add_argument("outdir", help="the folder to write (new or empty)")
    _add_model_args(export)
    export.add_argument("--preset", default="book", help="the generation_config.json's settings (default: book)")
    export.add_argument("--force", action="store_true", help="replace a folder tfchat export wrote before")
    export.add_argument("--training-text", metavar="WORDS", help="what the model was trained on, for its model card")

    bench = sub.add_parser("bench", help="measure the engine against the book's loop")
    _add_model_args(bench, model_help="checkpoint to measure (default: random weights in the book's configuration)")

    bench.add_argument("--tokens", type=int, default=64, help="tokens timed per measurement")
    bench.add_argument("--config", choices=("book", "scifi"), default="book",
                       help="without --model: random weights in the book's configuration (16.7M parameters with "
                            "its vocabulary) or scifi-demo's (D=512, 8 heads, 12 blocks: 140M)")
    bench.add_argument("--batch", type=int, metavar="N",
                       help="instead: aggregate tokens/s of N rows decoded together (2-8) against one row")
    bench.add_argument("--serve", action="store_true",
                       help="instead: a load test of tfchat serve on loopback (see --requests, --concurrency)")
    bench.add_argument("--endpoint", metavar="URL", default=argparse.SUPPRESS,
                       help="with --serve: load the server running there (vLLM, say) instead of tfchat serve")
    bench.add_argument("--requests", type=int, default=200, help="with --serve: requests in the mix")
    bench.add_argument("--concurrency", type=int, default=16, help="with --serve: requests at a time")
    bench.add_argument("--corpus", metavar="FILE", default=argparse.SUPPRESS,
                       help="instead: the training text's index: build, cache read, bytes a token, query times; "
                            "with --app: the app's tokens/s with the overlap view open as well")
    bench.add_argument("--corpus-tokens", type=int, metavar="N",
                       help="with --corpus: also build an N-token text of its lines drawn at random")
    bench.add_argument("--llama-cpp", metavar="DIR",
                       help="instead: tfchat against llama.cpp (DIR: its bin/llama-bench and gpt2-to-gguf) on one "
                            "random GPT-2 small, float32, float16 and 8-bit, idle and beside a busy core (minutes)")
    bench.add_argument("--drafting", action="store_true",
                       help="instead: tokens/s with drafting against without, grounded and ungrounded: a trained "
                            "model (--model, here default model/model.ckpt) on its training text (--corpus, or the "
                            "one it records), then random weights at the 140M scifi shape and GPT-2 small's, float32 "
                            "and float16 (minutes)")
    bench.add_argument("--startup", action="store_true",
                       help="instead: the app's time to its first frame and to ready, idle and beside a busy neighbour")
    bench.add_argument("--app", action="store_true",
                       help="instead: tokens/s inside the app against headless generate, same model and preset")

    train = sub.add_parser("train", help="train the book's model on a UTF-8 text file")
    train.add_argument("textfile")
    train.add_argument("--out", default="model/model.ckpt")
    train.add_argument("--config", default=None, help="YAML of hyper-parameters (default: configs/train.yaml)")
    train.add_argument("--resume", action="store_true", help="continue from --out and its optimizer side file")
    train.add_argument("--force", action="store_true", help="replace an existing --out (default: refuse)")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    for key in INT_KEYS:
        train.add_argument(flag_name(key), type=int, dest=key)
    for key in FLOAT_KEYS:
        train.add_argument(flag_name(key), type=float, dest=key)
    train.add_argument("--half", action="store_true", help="store the weights in float16 (half the file size)")
    train.add_argument("--full-vocabulary", action="store_true",
                       help="every token of cl100k_base (100,256), not only up to the text's largest: any prompt "
                            "encodes; costs (100,256 - the text's) x (2 x d_model + 1) parameters")
    train.add_argument("--keep-best", action="store_true",
                       help="write --out only when the validation loss improves (resume still continues from the latest)")

    hist = sub.add_parser("history", help="list or export past exchanges")
    hist.add_argument("--history", default=argparse.SUPPRESS, help="history database")
    hist.add_argument("--format", choices=("text", "jsonl"), default="text")
    hist.add_argument("--limit", type=int, default=20, help="newest N exchanges (0 = all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tfchat.core.errors import TfchatError

    from tfchat.core.system.lifecycle import on_exit_signals
    from tfchat.core.system.runtime import resolve_threads, tune_allocator

    args = build_parser().parse_args(argv)
    tune_allocator()
    # SIGHUP/SIGTERM unwind like an exit, so `finally` blocks end what a command started
    # (bench's neighbour process); the app replaces this with its own handler.
    on_exit_signals(lambda signum: sys.exit(128 + signum))
    try:
        # Checked here; applied (apply_threads) only where a command runs the model in this process.
        args.threads = resolve_threads(args.threads, default=None if args.command == "train" else 1)
        _models_for_the_command(args)
        return _dispatch(args)
    except TfchatError as exc:
        print(f"tfchat: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("\ntfchat: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a bug, not the user's doing: still one line, with a way to see more
        if os.environ.get("TFCHAT_DEBUG"):
            raise
        from tfchat.core.errors import describe_exception

        print(f"tfchat: unexpected error ({describe_exception(exc)}); TFCHAT_DEBUG=1 shows the traceback",
              file=sys.stderr)
        return EXIT_BUG


def _models_for_the_command(args) -> None:
    """--model given before the command is the top level's list: the app, score and generate take several
    (side by side, a row each); every other command takes one."""
    models = getattr(args, "model", None)
    if not isinstance(models, list) or args.command in (None, "score"):
        return
    if len(models) > 1 and args.command != "generate":
        from tfchat.core.errors import TfchatError

        raise TfchatError(f"tfchat {args.command} takes one --model; the app, score and generate take several")
    args.model = models if len(models) > 1 else models[0]


def _dispatch(args) -> int:
    from tfchat.core.system.runtime import apply_threads

    if args.command == "generate":
        from tfchat.core.commands.generate import cmd_generate

        return cmd_generate(args)
    if args.command == "info":
        from tfchat.core.commands.info import cmd_info

        return cmd_info(args)
    if args.command == "score":
        from tfchat.core.commands.score import run_score

        return run_score(args)
    if args.command == "overlap":
        from tfchat.core.commands.overlap import run_overlap

        return run_overlap(args)
    if args.command == "attention":
        from tfchat.core.commands.attention import run_attention

        return run_attention(args)
    if args.command == "serve":
        from tfchat.core.serve.server import run_server

        if not 1 <= args.max_rows <= MAX_SERVE_ROWS or args.max_queue < 0 or args.max_tokens_limit < 1:
            from tfchat.core.errors import TfchatError

            raise TfchatError(f"--max-rows takes 1 to {MAX_SERVE_ROWS}, --max-queue 0 or more, "
                              "--max-tokens-limit 1 or more")
        for flag, seconds in (("--request-timeout", args.request_timeout), ("--read-timeout", args.read_timeout)):
            if seconds is not None and not 0 < seconds < float("inf"):
                from tfchat.core.errors import TfchatError

                raise TfchatError(f"{flag} {seconds}: give seconds above 0")
        apply_threads(args.threads)
        return run_server(args.model, args.device, args.host, args.port, args.api_key, args.allow_no_key,
                          args.max_rows, args.max_queue, args.max_tokens_limit, args.request_timeout,
                          args.read_timeout, args.weights)
    if args.command == "export":
        from tfchat.core.commands.export import run_export

        return run_export(args)
    if args.command == "bench":
        apply_threads(args.threads)
        if args.app:
            from tfchat.tui.bench_app import run_app_bench  # the UI, only when asked for

            return run_app_bench(args.model, args.device, corpus=args.corpus)
        if args.llama_cpp:
            from tfchat.core.commands.bench.llama_cpp import run_llama_cpp_bench

            return run_llama_cpp_bench(args.llama_cpp, args.tokens)
        if args.drafting:
            from tfchat.core.commands.bench.draft_speed import run_drafting_bench

            return run_drafting_bench(args.model, args.corpus, args.tokens)
        if args.corpus:
            from tfchat.core.commands.bench.corpus import run_corpus_bench

            return run_corpus_bench(args.corpus, args.corpus_tokens)
        if args.startup:
            from tfchat.core.commands.bench.app_startup import run_startup_bench

            return run_startup_bench(args.model, args.device)
        if args.serve:
            from tfchat.core.commands.bench.serve import run_serve_bench

            return run_serve_bench(args.model, args.device, args.requests, args.concurrency, args.tokens,
                                   args.endpoint)
        if args.batch is not None:
            from tfchat.core.commands.bench.batch import run_batch_bench

            return run_batch_bench(args.model, args.device, args.batch, args.tokens)
        from tfchat.core.commands.bench.book import run_bench

        return run_bench(args.model, args.device, args.tokens, args.config)
    if args.command == "train":
        apply_threads(args.threads)
        from tfchat.core.train.trainer import run_train_command

        return run_train_command(args)
    if args.command == "history":
        from tfchat.core.store.history import export_history

        return export_history(args.history, args.format, args.limit, sys.stdout, sys.stderr)
    if not args.endpoint:
        _check_app_can_start(args)
    # The interactive app is the only place the UI is imported.
    from tfchat.tui.app import run_app

    return run_app(model=args.model, device=args.device, preset=args.preset, history=args.history,
                   endpoint=args.endpoint, api_key=args.api_key or os.environ.get("TFCHAT_API_KEY"),
                   remote_model=args.remote_model, endpoint_timeout=args.timeout,
                   threads=args.threads, initial_prompt=args.initial_prompt, resume=args.resume,
                   corpus=args.corpus, weights=args.weights)


def _check_app_can_start(args) -> None:
    """What would only fail inside the UI is checked before it opens: one line, exit 2."""
    from tfchat.core.errors import CheckpointError
    from tfchat.core.system.device import check_device_choice
    from tfchat.core.system.files import check_model_file
    from tfchat.core.system.paths import resolve_model_path

    check_device_choice(args.device)
    for model in args.model or [None]:  # --model repeated: every one is checked before the window opens
        path = resolve_model_path(model)
        try:
            check_model_file(path)
        except CheckpointError as exc:
            if path.exists():
                raise
            raise CheckpointError(f"{exc}; train a model with `tfchat train TEXT.txt`, or give one with --model "
                                  "PATH (or $TFCHAT_MODEL)") from None


if __name__ == "__main__":
    sys.exit(main())
