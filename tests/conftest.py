import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.reference import random_book_checkpoint  # noqa: E402

# A shell's background job starts with Ctrl+C ignored, and the commands the tests start would
# inherit that: the tests that press Ctrl+C on them would wait forever. A handler (unlike
# "ignored") is reset to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Keep every test away from the real XDG config, data, state and cache of whoever runs them."""
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("TFCHAT_MODEL", raising=False)


@pytest.fixture
def make_checkpoint(tmp_path):
    """Write a random book-layout checkpoint and return its path."""
    def make(d_model=24, num_heads=3, num_blocks=2, context_length=16, vocab_size=2000, seed=0, name=None, **kw):
        ckpt = random_book_checkpoint(d_model, num_heads, num_blocks, context_length, vocab_size, seed=seed, **kw)
        path = tmp_path / (name or f"m_{d_model}_{num_heads}_{num_blocks}_{context_length}_{vocab_size}_{seed}.ckpt")
        torch.save(ckpt, path)
        return path
    return make


@pytest.fixture
def small_model(make_checkpoint):
    """A small checkpoint whose vocabulary covers plain English in cl100k_base."""
    return make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=7)


@pytest.fixture
def app_factory(small_model, tmp_path):
    """Build the real app on the small model, with its history in tmp_path.

    The model runs in this process (`Engine`, one of the app's three backends): a Pilot test
    then spends no second spawning an interpreter. `engine_process=True` gives the app's own
    default, the model in a child process, as the tests of stopping, quitting and exit use."""
    from tfchat.core.engine.engine_process import EngineProcess
    from tfchat.core.engine.in_process import Engine
    from tfchat.tui.app import make_app

    history = tmp_path / "history.sqlite3"

    def build(preset=None, model=small_model, initial_prompt=None, engine_process=False, resume=False, corpus=None):
        loader = EngineProcess.load if engine_process else Engine.load
        return make_app(str(model), "cpu", preset, str(history), engine_loader=loader, initial_prompt=initial_prompt,
                        resume=resume, corpus=corpus)
    build.history = history
    build.model = small_model
    return build
