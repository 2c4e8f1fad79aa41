"""The real `tfchat` process in tmux, driven as a person would: send-keys in, capture-pane out."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class TmuxApp:
    def __init__(self, model: Path, history: Path, tmp: Path):
        self.name = f"tfchat-test-{uuid.uuid4().hex[:8]}"
        env = " ".join(f"{k}={v}" for k, v in {
            "TERM": "xterm-256color", "PYTHONPATH": ROOT, "XDG_CONFIG_HOME": tmp / "config",
            "XDG_DATA_HOME": tmp / "data", "XDG_STATE_HOME": tmp / "state"}.items())
        # The installed `tfchat` script, as a user runs it (the module where it is not installed).
        script = Path(sys.executable).parent / "tfchat"
        program = str(script) if script.exists() else f"{sys.executable} -m core.cli"
        # exec: the pane's process is tfchat itself, so signals reach it directly.
        command = f"cd {ROOT} && exec env {env} {program} --model {model} --history {history} --device cpu"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "100", "-y", "30", command], check=True)
        subprocess.run(["tmux", "set-option", "-t", self.name, "remain-on-exit", "on"], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def send(self, text: str) -> None:
        """Type a line into the prompt and press Enter."""
        self.type(text)
        self.keys("Enter")

    def wait_for(self, needle, timeout=60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if (needle(screen) if callable(needle) else needle in screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"never saw {needle!r}; screen:\n{self.screen()}")

    def pid(self) -> int:
        out = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_pid}"],
                             capture_output=True, text=True).stdout
        return int(out.strip())

    def dead(self) -> bool:
        out = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_dead}"],
                             capture_output=True, text=True).stdout
        return out.strip() == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


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


def wait_until(condition, what, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


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
    assert "> The customer" in screen and "20 tokens" in screen and "greedy" in screen
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
    screen = app.wait_for("stopped")
    assert "● ready" in screen
