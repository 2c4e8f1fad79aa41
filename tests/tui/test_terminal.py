"""The real `tfchat` process in tmux, driven as a person would: send-keys in, capture-pane out."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from support.tmux import TmuxApp, running, seconds_until_gone, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


@pytest.fixture
def tmux_app(small_model, tmp_path):
    apps = []

    def start():
        app = TmuxApp(small_model, tmp_path / "history.sqlite3", tmp_path)
        apps.append(app)
        app.wait_for("● ready")
        return app
    yield start
    for app in apps:
        app.close()


def exchanges(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT prompt, output, finish_reason FROM exchanges ORDER BY id").fetchall()


def test_type_a_prompt_see_the_continuation_switch_preset_and_quit(tmux_app, tmp_path):
    app = tmux_app()
    app.keys("M-4")  # greedy: a fixed continuation
    app.wait_for("● 4 greedy")
    app.send("/set max_new_tokens 20")
    app.wait_for("max_new_tokens     20 *")
    app.send("The customer")
    screen = app.wait_for("tok/s")
    assert "The customer" in screen and "20 tokens" in screen and "greedy" in screen
    app.keys("C-n")
    app.wait_for("● 5 book")
    app.keys("C-q")
    wait_until(app.dead, "tfchat did not quit on ctrl+q")
    [(prompt, output, reason)] = exchanges(tmp_path / "history.sqlite3")
    assert prompt == "The customer" and output and reason == "length"


def test_sigkill_mid_generation_loses_nothing_already_completed(tmux_app, tmp_path):
    app = tmux_app()
    app.send("/preset greedy")
    app.send("First prompt")
    app.wait_for("tok/s")
    app.send("/set max_new_tokens 100000")
    app.send("Second prompt")
    app.wait_for("● generating")
    os.kill(app.pid(), signal.SIGKILL)
    rows = exchanges(tmp_path / "history.sqlite3")
    assert len(rows) == 1 and rows[0][0] == "First prompt" and rows[0][1] and rows[0][2] == "length"


def test_a_dropped_terminal_keeps_even_the_partial_generation(tmux_app, tmp_path):
    app = tmux_app()
    app.send("/set max_new_tokens 100000")
    app.send("Cut off")
    app.wait_for("● generating")
    time.sleep(0.5)
    os.kill(app.pid(), signal.SIGHUP)  # what a dropped SSH link delivers
    wait_until(lambda: exchanges(tmp_path / "history.sqlite3"), "the partial exchange was not saved on SIGHUP")
    [(prompt, output, reason)] = exchanges(tmp_path / "history.sqlite3")
    assert prompt == "Cut off" and output and reason == "hangup"


def test_escape_and_ctrl_j_reach_the_app_through_tmux(tmux_app):
    app = tmux_app()
    app.send("/set max_new_tokens 100000")
    app.type("line one")
    app.keys("C-j")
    app.type("line two")
    screen = app.wait_for("line two")
    assert "line one" in screen  # still in the prompt pane: ctrl+j added a line, did not send
    app.keys("Enter")
    app.wait_for("● generating")
    app.keys("Escape")
    # Both on one screen: a capture can fall between the parts of a frame the terminal is still drawing.
    app.wait_for(lambda screen: "stopped" in screen and "● ready" in screen)


def test_ten_hangups_mid_generation_leave_no_process_and_keep_every_partial(small_model, tmp_path):
    """`tmux kill-session` is what a dropped SSH link does to the pane: SIGHUP, then no terminal."""
    history = tmp_path / "history.sqlite3"
    times = []
    for run in range(10):
        app = TmuxApp(small_model, history, tmp_path, remain_on_exit=False)
        try:
            app.wait_for("● ready")
            app.send("/set max_new_tokens 5000")
            app.send(f"Hangup {run}")
            app.wait_for("● generating")
            time.sleep(0.3)
            tree = app.process_tree()
            assert len(tree) >= 3, f"expected the app, its engine and the tracker, got {tree}"
        finally:
            app.close()
        times.append(seconds_until_gone(tree))
        assert not [p for p in tree if running(p)], f"run {run}: processes left after the hangup"
    rows = exchanges(history)
    assert [r[0] for r in rows] == [f"Hangup {run}" for run in range(10)]
    assert all(output and reason == "hangup" for _, output, reason in rows)
    with sqlite3.connect(history) as db:  # the engine answered the stop: token counts, not None
        counts = [json.loads(s)["new_tokens"] for (s,) in db.execute("SELECT stats FROM exchanges")]
    assert all(isinstance(n, int) and n > 0 for n in counts), counts
    print(f"seconds from hangup to no process left: {', '.join(f'{t:.2f}' for t in times)}")
    assert max(times) < 2.0


def test_sigterm_mid_generation_ends_every_process_and_keeps_the_partial(tmux_app, tmp_path):
    app = tmux_app()
    app.send("/set max_new_tokens 5000")
    app.send("Terminated")
    app.wait_for("● generating")
    time.sleep(0.3)
    tree = app.process_tree()
    os.kill(tree[0], signal.SIGTERM)
    assert seconds_until_gone(tree) < 2.0
    [(prompt, output, reason)] = exchanges(tmp_path / "history.sqlite3")
    assert prompt == "Terminated" and output and reason == "terminated"


def test_quit_while_the_model_still_loads_is_immediate(small_model, tmp_path):
    """ctrl+q during the load ends the app and the loading child at once, without waiting for the model."""
    app = TmuxApp(small_model, tmp_path / "history.sqlite3", tmp_path)
    try:
        app.wait_for("● loading")
        wait_until(lambda: len(app.process_tree()) >= 3, "the engine child never started")
        tree = app.process_tree()
        app.keys("C-q")
        assert seconds_until_gone(tree) < 2.0
        assert "● ready" not in app.screen()  # it quit before the model was there
    finally:
        app.close()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_an_idle_app_ends_with_every_process_on_hangup_or_terminate(tmux_app, tmp_path, signum):
    app = tmux_app()
    tree = app.process_tree()
    assert len(tree) >= 3
    os.kill(tree[0], signum)
    assert seconds_until_gone(tree) < 2.0
    assert exchanges(tmp_path / "history.sqlite3") == []  # nothing was running, nothing is invented


def test_keys_typed_while_tfchat_starts_land_in_the_prompt(small_model, tmp_path):
    app = TmuxApp(small_model, tmp_path / "history.sqlite3", tmp_path)
    try:
        time.sleep(0.3)  # python is still importing; the terminal is not even in raw mode yet
        app.type("typed ahead")
        app.wait_for("● ready")
        app.wait_for("│ typed ahead")  # inside the prompt box, not an echo left on the terminal
    finally:
        app.close()


def test_f4_edits_the_prompt_in_the_editor(small_model, tmp_path):
    editor = tmp_path / "editor.sh"  # keeps what it was given, then writes as an editor saves: a last newline
    editor.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/given.txt\nprintf "Begun here, from the editor\\n" > "$1"\n')
    editor.chmod(0o755)
    app = TmuxApp(small_model, tmp_path / "history.sqlite3", tmp_path, env={"EDITOR": str(editor)})
    try:
        app.wait_for("● ready")
        app.type("Begun here, ")
        app.keys("F4")
        app.wait_for("Begun here, from the editor")
        app.keys("Enter")
        app.wait_for("tok/s")
    finally:
        app.close()
    [(prompt, _, _)] = exchanges(tmp_path / "history.sqlite3")
    assert prompt == "Begun here, from the editor"  # the file's last newline is not the prompt's
    assert (tmp_path / "given.txt").read_text() == "Begun here, \n"  # a text file, ending as editors expect


WHEEL_UP, WHEEL_DOWN = "\x1b[<64;10;5M", "\x1b[<65;10;5M"  # what a terminal sends for the wheel (SGR mouse)


def test_the_mouse_wheel_scrolls_the_transcript_and_back(tmux_app):
    app = tmux_app()
    app.send("/preset greedy")
    app.send("/set max_new_tokens 300")
    app.send("The key")
    bottom = app.wait_for("300 tokens")
    for _ in range(6):
        app.type(WHEEL_UP)
    scrolled = app.wait_for(lambda screen: "300 tokens" not in screen)
    assert scrolled.splitlines()[0] != bottom.splitlines()[0]
    for _ in range(30):
        app.type(WHEEL_DOWN)
    app.wait_for("300 tokens")


def test_a_raw_paste_arrives_whole_as_one_prompt_and_quitting_after_it_works(tmux_app, tmp_path):
    """A terminal without bracketed paste types a paste key by key: line breaks come as Enter.

    Every character lands in order, the line breaks stay line breaks (nothing is sent until
    Enter), and the app answers keys again at once. Before, the app handled about 80 characters a second
    of a 200 KB paste and sent each of its lines as a prompt.
    """
    from tfchat.core.engine.tokenizer import load_encoding

    lines = [f"line {i}: the quick brown fox jumps over the lazy dog, {i * 7919 % 1000} times" for i in range(1500)]
    text = "\n".join(lines)  # about 100 KB
    expected_tokens = len(load_encoding().encode(text, disallowed_special=()))
    paste = tmp_path / "paste.txt"
    paste.write_text(text)
    app = tmux_app()
    subprocess.run(["tmux", "load-buffer", "-b", app.name, str(paste)], check=True)
    subprocess.run(["tmux", "paste-buffer", "-d", "-b", app.name, "-t", app.name], check=True)  # raw: no -p
    app.wait_for(f"ctx {expected_tokens}/", timeout=120)
    screen = app.screen()
    assert "line 1499:" in screen and "generating" not in screen and "queued" not in screen
    app.keys("Enter")  # the whole paste, in order, is one prompt
    app.wait_for("tok/s", timeout=60)
    app.keys("C-q")
    wait_until(app.dead, "tfchat did not quit on ctrl+q after a raw paste", timeout=30)
    [(prompt, _output, _reason)] = exchanges(tmp_path / "history.sqlite3")
    assert prompt == text
