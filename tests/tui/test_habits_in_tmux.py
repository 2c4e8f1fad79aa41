"""The habits a user brings, through tmux at three sizes: ctrl+c stops, ctrl+d quits, /resume goes on."""
import json
import shutil
import sqlite3

import pytest

from support.tmux import TmuxApp, wait_until
from tfchat.core.engine.tokenizer import load_encoding

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def rows(history):
    with sqlite3.connect(history) as db:
        return db.execute("SELECT prompt, output, finish_reason, stats, conversation FROM exchanges ORDER BY id").fetchall()


@pytest.mark.parametrize("size", [(60, 20), (100, 30), (160, 45)])
def test_ctrl_c_stops_ctrl_d_quits_and_resume_goes_on_from_the_conversation(small_model, tmp_path, size):
    history = tmp_path / "history.sqlite3"
    app = TmuxApp(small_model, history, tmp_path, size=size)
    try:
        app.wait_for("● ready")
        app.send("/set max_new_tokens 0")  # until stopped: only a key ends it
        app.send("The customer")
        app.wait_for("generating")
        app.wait_for(lambda screen: len(screen.split("The customer", 1)[-1].split()) > 5)  # text streams in
        app.keys("C-c")
        screen = app.wait_for("stopped")
        assert "The customer" in screen  # kept on screen
        app.wait_for("● ready")
        app.keys("C-d")  # on the empty prompt: quit
        wait_until(app.dead, "ctrl+d on an empty prompt did not quit")
    finally:
        app.close()
    [(prompt, kept, reason, _, conversation)] = rows(history)
    assert prompt == "The customer" and kept and reason == "stopped"

    app = TmuxApp(small_model, history, tmp_path, size=size)
    try:
        app.wait_for("● ready")
        app.send("/resume")
        app.wait_for("Reopened")
        app.keys("C-t")  # continue mode: the next prompt goes on from the reopened text
        app.wait_for("continue")
        app.send("/set max_new_tokens 3")
        app.send(" And then")
        app.wait_for(lambda screen: screen.count("tok/s") >= 1 and "● ready" in screen)
        wait_until(lambda: len(rows(history)) == 2, "the second exchange was not written")
        app.keys("C-q")
        wait_until(app.dead, "tfchat did not quit on ctrl+q")
    finally:
        app.close()
    (_, _, _, _, first), (prompt, _, _, stats, second) = rows(history)
    assert prompt == " And then" and second == first == conversation
    context = load_encoding().encode("The customer" + kept + " And then")
    assert json.loads(stats)["prompt_tokens"] == len(context)  # the reopened text was its context
