"""Snapshots of the main screen at the sizes people run it at (wide, the classic 80x24, a narrow pane),
and of the probability view, the token cursor and the model inspector."""
import time

import pytest

from tfchat.tui.app import make_app
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.transcript.pane import Transcript


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
    # How long the load took and the memory it holds differ run to run.
    pilot.app.query_one("#load-summary").update("Loaded model.ckpt in (time varies): 6.5M parameters, (memory varies)")
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


async def _greedy_exchange(pilot, keys=()):
    """A short greedy exchange (the same every run), its volatile figures fixed, then `keys`."""
    await _ready_with_a_prompt(pilot)
    app = pilot.app
    app.chat.run_slash_text("/preset greedy")
    app.chat.run_slash_text("/set max_new_tokens=24")
    await pilot.press("enter")
    deadline = time.monotonic() + 30
    while app.chat.session.active is not None or not app.query_one(Transcript).exchanges() or app.chat.session.pending:
        assert time.monotonic() < deadline, "the generation never finished"
        await pilot.pause(0.02)
    view = app.query_one(Transcript).exchanges()[-1]
    view.branch.summary = "24 tokens · (speed varies) · greedy · length"  # tok/s and ttft differ run to run
    view.show_branch(view.branch_index)
    await pilot.press(*keys)
    await pilot.pause()


def test_probability_view(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(100, 30), run_before=lambda pilot: _greedy_exchange(pilot, ["f3"]))


def test_token_cursor(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(120, 36),
                        run_before=lambda pilot: _greedy_exchange(pilot, ["f5", "home", "right", "down"]))


async def _inspector(pilot):
    await _ready_with_a_prompt(pilot)
    app = pilot.app
    card = {**app.engine.describe(), "file": "model/model.ckpt", "process_resident_bytes": 300 * 2**20,
            "load_seconds": 0.5}
    app.push_screen(InspectorScreen(card, 1234.5))  # the path and the memory differ run to run
    await pilot.pause()


def test_model_inspector(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(100, 30), run_before=_inspector)


async def _comparison(pilot):
    """Greedy against the book's sampler with a fixed seed (the same every run), volatile figures fixed."""
    await _ready_with_a_prompt(pilot)
    app = pilot.app
    for command in ("/preset book", "/set seed 3", "/set max_new_tokens 24", "/preset greedy",
                    "/set max_new_tokens 24", "/compare greedy book"):
        app.chat.run_slash_text(command)
    await pilot.press("enter")
    deadline = time.monotonic() + 30
    while app.chat.session.active is not None or not app.query(CompareView) or app.chat.session.pending:
        assert time.monotonic() < deadline, "the comparison never finished"
        await pilot.pause(0.02)
    for column in app.query_one(CompareView).columns:
        column.finish(f"24 tokens · (speed varies) · {column.finish_reason}")  # tok/s and ttft differ run to run
    app.clear_notifications()
    await pilot.pause()


def test_compare_columns(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=(100, 30), run_before=_comparison)


async def _attention(pilot, keys=()):
    """The attention at the greedy exchange's fourth step, once its maps have come; then `keys`."""
    await _greedy_exchange(pilot, ["f5", "home", "right", "right", "right", "a"])
    screen = pilot.app.screen
    deadline = time.monotonic() + 30
    while screen.maps is None or screen.baseline is None:
        assert time.monotonic() < deadline, "the attention never came"
        await pilot.pause(0.02)
    await pilot.press(*keys)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_attention_model_view(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app, terminal_size=size, run_before=_attention)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_attention_head_matrix(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app, terminal_size=size,
                        run_before=lambda pilot: _attention(pilot, ["down", "enter", "left", "left"]))


async def _scored(pilot):
    await _ready_with_a_prompt(pilot)
    app = pilot.app
    status = app.query_one(StatusLine)
    counted = status.context_tokens
    app.query_one(PromptInput).load_text("The customer wants value, and the team listens before it closes the deal.")
    deadline = time.monotonic() + 30
    while status.context_tokens == counted:  # the count follows the new text a moment after it
        assert time.monotonic() < deadline, "the context was never counted again"
        await pilot.pause(0.02)
    await pilot.press("f9")
    deadline = time.monotonic() + 30
    while app.chat.session.active is not None or not app.query_one(Transcript).exchanges():
        assert time.monotonic() < deadline, "the score never came"
        await pilot.pause(0.02)
    view = app.query_one(Transcript).exchanges()[-1]
    view.branch.summary = view.branch.summary.replace(view.branch.summary.split(" · ")[3], "(time varies)")
    view.show_branch(view.branch_index)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_scored_text(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app, terminal_size=size, run_before=_scored)


async def _positions(pilot):
    await _inspector(pilot)
    await pilot.press("p")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_inspector_positional_encoding(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app, terminal_size=size, run_before=_positions)
