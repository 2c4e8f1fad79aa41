"""The real `tfchat` process in tmux, as a person runs it: send-keys in, capture-pane out."""
import subprocess
import sys
import time
import uuid
from pathlib import Path

from support import ROOT


class TmuxApp:
    def __init__(self, model: Path, history: Path, tmp: Path, remain_on_exit: bool = True, env: dict | None = None,
                 size: tuple[int, int] = (100, 30)):
        self.name = f"tfchat-test-{uuid.uuid4().hex[:8]}"
        env = " ".join(f"{k}={v}" for k, v in {
            "TERM": "xterm-256color", "PYTHONPATH": ROOT, "XDG_CONFIG_HOME": tmp / "config",
            "XDG_DATA_HOME": tmp / "data", "XDG_STATE_HOME": tmp / "state", **(env or {})}.items())
        # The installed `tfchat` script, as a user runs it (the module where it is not installed).
        script = Path(sys.executable).parent / "tfchat"
        program = str(script) if script.exists() else f"{sys.executable} -m tfchat"
        # exec: the pane's process is tfchat itself, so signals reach it directly.
        command = f"cd {ROOT} && exec env {env} {program} --model {model} --history {history} --device cpu"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                        command], check=True)
        if remain_on_exit:
            subprocess.run(["tmux", "set-option", "-t", self.name, "remain-on-exit", "on"], check=True)

    def screen(self) -> str:
        shown = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout
        return shown.replace("\u00a0", " ")  # stats lines keep their parts whole with no-break spaces

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

    def process_tree(self) -> list[int]:
        """The app's pid and every process below it (the engine child, multiprocessing's tracker)."""
        found, frontier = [], [self.pid()]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            frontier += children_of(pid)
        return found


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for tmux to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def seconds_until_gone(pids: list[int], limit: float = 10.0) -> float:
    start = time.monotonic()
    while any(running(p) for p in pids) and time.monotonic() - start < limit:
        time.sleep(0.02)
    return time.monotonic() - start


def wait_until(condition, what, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
