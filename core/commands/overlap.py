"""`tfchat overlap`: which spans of a text occur verbatim in the model's training text.

Every maximal span of at least --min-tokens tokens (one that does not occur any more when extended by a
token on either side), with its token range, text, occurrences and the corpus line of its first; then the
share of the text's tokens inside such spans and the longest. Tokens are the model's own.
"""
from __future__ import annotations

import json
import sys

from tfchat.core.commands.score import read_text
from tfchat.core.corpus.copied_spans import Overlap
from tfchat.core.corpus.training_text import TrainingText, corpus_path_for, trained_sha256
from tfchat.core.engine.tokenizer import inline_text, tokenizer_for
from tfchat.core.errors import EXIT_OK, TfchatError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.system.paths import resolve_model_path


def open_training_text(model_arg: str | None, corpus_arg: str | None) -> TrainingText:
    """The model's tokenizer and training text (given, or as its checkpoint records it), indexed."""
    checkpoint = load_checkpoint(resolve_model_path(model_arg))
    path = corpus_path_for(corpus_arg, checkpoint.training_text)
    return TrainingText.open(path, tokenizer_for(checkpoint.tokenizer_folder),
                             trained_sha256=trained_sha256(corpus_arg, checkpoint.training_text))


def check_min_tokens(value: int) -> int:
    if value < 1:
        raise TfchatError(f"--min-tokens {value}: give 1 or more tokens")
    return value


def run_overlap(args) -> int:
    min_tokens = check_min_tokens(args.min_tokens)
    text = args.text if args.text is not None else read_text(None)
    corpus = open_training_text(args.model, args.corpus)
    ids = corpus.encoding.encode(text, disallowed_special=())
    found = corpus.overlap(ids, min_tokens)
    if args.json:
        print(json.dumps(found.as_json(), ensure_ascii=False))
        return EXIT_OK
    print_overlap(found, corpus)
    return EXIT_OK


def print_overlap(found: Overlap, corpus: TrainingText, out=None) -> None:
    out = out or sys.stdout
    for span in found.spans:
        times = f"{span.occurrences} time{'s' if span.occurrences != 1 else ''}"
        print(f"tokens {span.start}-{span.end} ({span.end - span.start}), {times}, first at line {span.line}: "
              f"'{inline_text(span.text)}'", file=out)
    print(f"{found.summary()} · corpus {corpus.path}", file=out)

