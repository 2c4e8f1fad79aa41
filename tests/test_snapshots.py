"""Snapshots of the main screen at the sizes people run it at: wide, the classic 80x24, and a narrow pane."""
import time

import pytest

from tui.app import make_app
from tui.prompt_input import PromptInput
from tui.status_line import StatusLine


@pytest.fixture
def snapshot_app(make_checkpoint, tmp_path):
    model = make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=64, vocab_size=100256,
                            name="model.ckpt")
    return make_app(str(model), "cpu", "balanced", str(tmp_path / "history.sqlite3"))


async def _ready_with_a_prompt(pilot):
    deadline = time.monotonic() + 30
    while pilot.app.query_one(StatusLine).state != "ready":
        assert time.monotonic() < deadline, "engine never became ready"
        await pilot.pause(0.02)
    prompt = pilot.app.query_one(PromptInput)
    prompt.cursor_blink = False
    prompt.load_text("The best way to close a sale is")
    status = pilot.app.query_one(StatusLine)
    while status.context_tokens <= 0:  # the tokenizer loads in a thread; the count follows typing
        assert time.monotonic() < deadline, "the context was never counted"
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", [(100, 30), (80, 24), (60, 20)])
def test_main_screen(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app, terminal_size=size, run_before=_ready_with_a_prompt)
