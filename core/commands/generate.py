"""`tfchat generate`: one prompt streamed to standard output, or several rows (`core.commands.compare`)."""
from __future__ import annotations

import json
import os
import sys

from tfchat.core.errors import EXIT_OK
from tfchat.core.settings.weights_choice import weights_label
from tfchat.core.system.runtime import apply_threads


def load_catalog():
    from tfchat.core.settings.presets import load_presets

    catalog = load_presets()
    for warning in catalog.warnings:
        print(f"tfchat: warning: {warning}", file=sys.stderr)
    return catalog


def sampling_params_from_args(args, catalog=None, preset: str | None = None):
    """The preset's params (default: --preset, else balanced) with the command line's values on top."""
    from tfchat.core.settings.presets import params_from_mapping

    catalog = catalog or load_catalog()
    base = catalog.get(preset or args.preset or "balanced").params
    overrides = {
        key: getattr(args, key)
        for key in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens", "seed", "window",
                    "end_of_text", "draft")
        if getattr(args, key) is not None
    }
    if args.stop:
        overrides["stop"] = args.stop
    return params_from_mapping(overrides, base)


def _read_prompt(args) -> str:
    from tfchat.core.errors import PromptError
    from tfchat.core.system.bounded_read import MAX_PROMPT_BYTES, decoded, read_bounded

    if args.prompt is not None:
        return args.prompt
    if sys.stdin is None or sys.stdin.isatty():
        raise PromptError("no prompt: give one as an argument or on standard input")
    text = decoded(read_bounded(None, MAX_PROMPT_BYTES, "prompt"), "standard input")
    # `echo "text" |` adds a newline the user did not mean as part of the prompt.
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def cmd_generate(args) -> int:
    from tfchat.core.errors import PresetError

    if isinstance(args.model, list):  # --model a --model b: each model's rows under a header of its own
        return _generate_per_model(args)
    if args.compare or args.more_prompts or args.prompts_file or args.format == "jsonl":
        return _generate_rows(args)
    params = sampling_params_from_args(args)
    if args.logprobs is not None and not 1 <= args.logprobs <= 20:
        raise PresetError(f"--logprobs must be from 1 to 20, got {args.logprobs}")
    prompt = _read_prompt(args)
    engine = _backend(args)
    corpus = _training_text(args, engine)
    _draft_from(corpus, engine, params)
    out = sys.stdout
    if args.logprobs or args.trace:
        from tfchat.core.commands.step_output import JsonLinesWriter, TraceWriter

        top = args.logprobs or TraceWriter.CANDIDATES
        generation = engine.generate(prompt, params, top_logprobs=top)
        writer = JsonLinesWriter(engine, out) if args.logprobs else TraceWriter(engine, out, prompt)
    else:
        generation, writer = engine.generate(prompt, params), None
    if generation.notice:  # a server that does not take every sampler of the preset
        print(f"tfchat: note: {generation.notice}", file=sys.stderr)
    try:
        _stream_generation(generation, writer, out, args, corpus)
    finally:
        engine.close()  # its helper thread ends here, not in the interpreter's teardown
    return EXIT_OK


def _training_text(args, engine):
    """--corpus FILE: the training text, indexed in the model's tokens, for the stats' copied share."""
    if not getattr(args, "corpus", None):
        return None
    from tfchat.core.corpus.training_text import TrainingText, corpus_path_for

    try:
        return TrainingText.open(corpus_path_for(args.corpus, None), engine.encoding)
    except BaseException:
        engine.close()
        raise


def _draft_from(corpus, engine, params) -> None:
    """The training text to draft tokens from: --corpus's, else the one the checkpoint records when it is still
    there, unchanged, and indexed (drafting never waits for an index to be built, nor says it is missing)."""
    card = getattr(engine, "card", None)  # a server's backend has none, and drafts as it does
    if params.draft not in ("auto", "corpus") or card is None:
        return
    if corpus is None:
        from tfchat.core.corpus.training_text import recorded_training_text_if_indexed

        corpus = recorded_training_text_if_indexed(card.training_text, engine.encoding)
    if corpus is not None:
        engine.use_training_text(corpus.index)


def _stream_generation(generation, writer, out, args, corpus=None) -> None:
    wrote = False
    try:
        for piece in generation:
            if writer is None:
                out.write(piece)
                out.flush()
                wrote = True
            else:
                writer.write_steps(generation.steps)
    finally:
        if writer is not None:
            writer.write_steps(generation.steps)
        if wrote:
            out.write("\n")
            out.flush()
        if args.stats and generation.stats is not None:
            figures = generation.stats.as_json()
            if corpus is not None:  # the share of the output copied from the training text, its longest span
                from tfchat.core.corpus.copied_spans import DEFAULT_MIN_TOKENS

                ids = corpus.encoding.encode(generation.text, disallowed_special=())
                figures.update(corpus.overlap(ids, DEFAULT_MIN_TOKENS).figures())
            print(json.dumps(figures), file=sys.stderr)


def _backend(args):
    """The model to generate with: a checkpoint in this process, or a server (--endpoint)."""
    if args.endpoint:
        from tfchat.core.engine.http_client import HttpBackend

        return HttpBackend.connect(args.endpoint, args.api_key or os.environ.get("TFCHAT_API_KEY"),
                                   args.remote_model, args.timeout)
    from tfchat.core.system.device import check_device_choice
    from tfchat.core.system.files import check_model_file
    from tfchat.core.system.paths import resolve_model_path

    path = resolve_model_path(args.model)
    check_device_choice(args.device)
    check_model_file(path)  # a wrong path or device is said before torch is even imported
    apply_threads(args.threads)
    from tfchat.core.engine.in_process import Engine

    engine = Engine.load(path, args.device, args.weights)
    if args.weights != "exact":  # the text alone would not say that it is not the checkpoint's model
        print(f"tfchat: {weights_label(args.weights)}", file=sys.stderr)
    return engine


def _generate_per_model(args) -> int:
    """The same command for each model in turn, each loaded and freed before the next."""
    import argparse
    import gc

    for number, model in enumerate(args.model, start=1):
        print(f"{'' if number == 1 else chr(10)}=== model: {model} ===", flush=True)
        code = cmd_generate(argparse.Namespace(**{**vars(args), "model": model}))
        gc.collect()  # the model before the next one loads
        if code:
            return code
    return 0


def _generate_rows(args) -> int:
    """Several rows (presets compared, several prompts, or --format jsonl): `core.commands.compare`."""
    from tfchat.core.commands.compare import compare_presets, plan_rows, read_prompts_file, run_rows
    from tfchat.core.errors import PresetError

    if args.logprobs or args.trace:
        raise PresetError("--logprobs and --trace show one generation; they do not combine with --compare, "
                          "--prompt, --prompts-file or --format jsonl")
    catalog = load_catalog()
    presets = compare_presets(args.compare, catalog) if args.compare else [args.preset or "balanced"]
    prompts = ([args.prompt] if args.prompt is not None else []) + (args.more_prompts or [])
    if args.prompts_file:
        prompts += read_prompts_file(args.prompts_file)
    if not prompts:
        prompts = [_read_prompt(args)]
    rows = plan_rows(prompts, presets, lambda name: sampling_params_from_args(args, catalog, name))
    engine = _backend(args)
    try:
        run_rows(engine, rows, sys.stdout, args.format, headers=(bool(args.compare), len(prompts) > 1))
    finally:
        engine.close()
    return EXIT_OK
