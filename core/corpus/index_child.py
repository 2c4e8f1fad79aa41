"""A corpus index built in a child process, for the app: building needs torch, which the app's own
process never loads. The child writes the index to the cache and ends; the app then reads it there."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from tfchat.core.errors import CorpusError
from tfchat.core.system.child_output import engine_log_file, send_output_to_log
from tfchat.core.system.lifecycle import exit_when_orphaned, register_child


def _build(path: str, tokenizer_folder: str | None) -> None:
    exit_when_orphaned()  # first: a build must not outlive the app
    send_output_to_log()  # the terminal is the UI's
    from tfchat.core.corpus.training_text import TrainingText
    from tfchat.core.engine.tokenizer import tokenizer_for

    TrainingText.open(Path(path), tokenizer_for(Path(tokenizer_folder) if tokenizer_folder else None))


def build_in_child(path: Path, encoding) -> None:
    """Build `path`'s index in `encoding`'s tokens (cl100k_base, or a GPT-2 folder's own) and wait for it."""
    folder = getattr(encoding, "folder", None)
    process = mp.get_context("spawn").Process(target=_build, args=(str(path), str(folder) if folder else None),
                                              name="tfchat-corpus-index")
    process.start()
    register_child(process)  # ended with the app, whatever ends it
    process.join()
    if process.exitcode != 0:
        raise CorpusError(f"{path}: indexing it failed (exit {process.exitcode}); {engine_log_file()} says why")
