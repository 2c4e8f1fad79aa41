"""The history database: committed per exchange, recalled, exported by `tfchat history`."""
import contextlib
import json
import os
import sqlite3
import subprocess

import pytest

from tfchat.core.store.history import Exchange, History
from support.cli import tfchat


def _exchange(prompt, output, reason="length", kind="prompt"):
    return Exchange(prompt=prompt, output=output, preset="book", params={"temperature": 0.5},
                    stats={"new_tokens": 3, "tokens_per_s": 100.0}, model="/m.ckpt", finish_reason=reason, kind=kind)


def test_each_exchange_is_committed_at_once(tmp_path):
    path = tmp_path / "h.sqlite3"
    history = History(path)
    history.add(_exchange("hello", " world"))
    # A second connection (another process, or after a crash) sees it without any close().
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT prompt, output FROM exchanges").fetchall() == [("hello", " world")]


def test_recent_prompts_are_distinct_newest_last_and_skip_continuations(tmp_path):
    history = History(tmp_path / "h.sqlite3")
    for prompt in ("a", "b", "a", "c"):
        history.add(_exchange(prompt, "x"))
    history.add(_exchange("", "more", kind="continue"))
    assert history.recent_prompts() == ["b", "a", "c"]


def test_history_command_exports_text_and_json_lines(tmp_path):
    path = tmp_path / "h.sqlite3"
    history = History(path)
    history.add(_exchange("first", " one"))
    history.add(_exchange("second", " two", reason="stopped"))
    history.close()
    text = tfchat("history", "--history", str(path))
    assert text.returncode == 0 and ">>> first" in text.stdout and "stopped" in text.stdout
    lines = tfchat("history", "--history", str(path), "--format", "jsonl", "--limit", "1")
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["prompt"] == "second" and rows[0]["params"] == {"temperature": 0.5}


@contextlib.contextmanager
def read_only_view(folder):
    """`folder` as a read-only directory: its mode for a user, a read-only bind mount for root (whom modes
    do not stop); skipped where neither can be had."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    view = folder.parent / (folder.name + "-read-only")
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("no read-only directory to be had here (root, and no bind mount)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode != 0:
            pytest.skip("no read-only bind mount here")
        yield view
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_a_history_in_a_read_only_directory_is_listed(tmp_path):
    """Reading needs no write: `tfchat history` opens the database read-only, so one in a read-only
    directory (or on read-only media) is listed as it is, and nothing is written there."""
    folder = tmp_path / "kept"
    folder.mkdir()
    history = History(folder / "h.sqlite3")
    history.add(_exchange("kept prompt", " kept output"))
    history.close()
    with read_only_view(folder) as view:
        listed = tfchat("history", "--history", str(view / "h.sqlite3"))
        exported = tfchat("history", "--history", str(view / "h.sqlite3"), "--format", "jsonl")
    assert listed.returncode == 0 and ">>> kept prompt" in listed.stdout, listed.stderr
    assert exported.returncode == 0 and json.loads(exported.stdout)["output"] == " kept output"


def test_history_command_on_a_fresh_install_says_there_is_nothing_yet(tmp_path):
    r = tfchat("history", "--history", str(tmp_path / "none.sqlite3"))
    assert r.returncode == 0 and r.stdout == "" and "no history yet" in r.stderr
    assert not (tmp_path / "none.sqlite3").exists()  # looking does not create it


def test_history_command_refuses_a_negative_limit(tmp_path):
    r = tfchat("history", "--history", str(tmp_path / "none.sqlite3"), "--limit", "-1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--limit" in r.stderr


def _peak_rss_mb(args, stdout=None) -> tuple[int, float, bytes]:
    """Run `tfchat ARGS`; its exit code, its own peak resident memory in MB, and its stderr."""
    import os
    import subprocess
    import sys

    from support import ROOT as root
    from support.processes import PeakMemory

    process = subprocess.Popen([sys.executable, "-m", "tfchat", *args], stdout=stdout or subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    if stdout is not None:
        stdout.close()  # the child holds the pipe; ours must not keep it open
    peak = PeakMemory(process.pid)
    err = process.stderr.read()
    process.wait()
    return process.returncode, peak.result(), err


def test_export_streams_a_large_history_with_flat_memory_and_stops_at_a_closed_pipe(tmp_path):
    import subprocess

    path = tmp_path / "h.sqlite3"
    history = History(path)
    big = "word " * 4000  # 20 KB an exchange: 4,000 of them, 80 MB of history
    with history._transaction():  # one transaction: the test's own set-up, not what is measured
        for i in range(4000):
            history._db.execute("INSERT INTO exchanges (created_at, kind, prompt, output, preset, params, stats, model,"
                                " finish_reason) VALUES (?, 'prompt', ?, ?, 'book', '{}', '{}', 'm', 'length')",
                                (float(i), f"p{i}", big))
    history.close()
    code, one_mb, _ = _peak_rss_mb(["history", "--history", str(path), "--limit", "1", "--format", "jsonl"])
    assert code == 0
    code, all_mb, _ = _peak_rss_mb(["history", "--history", str(path), "--limit", "0", "--format", "jsonl"])
    assert code == 0 and all_mb - one_mb < 30, f"exporting 80 MB took {all_mb - one_mb:.0f} MB more than one row"
    reader = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    code, _, err = _peak_rss_mb(["history", "--history", str(path), "--limit", "0", "--format", "jsonl"],
                                stdout=reader.stdin)
    reader.wait()
    assert code == 0 and b"Traceback" not in err and b"Exception ignored" not in err, err


OLD_SCHEMA = """CREATE TABLE exchanges (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, kind TEXT NOT NULL,
    prompt TEXT NOT NULL, output TEXT NOT NULL, preset TEXT NOT NULL, params TEXT NOT NULL, stats TEXT NOT NULL,
    model TEXT NOT NULL, finish_reason TEXT NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO exchanges VALUES (1, 0, 'prompt', 'kept before', ' conversations', 'book', '{}', '{}', 'm', 'length');"""


def test_a_history_from_before_conversations_reads_as_it_is_and_gains_them(tmp_path):
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SCHEMA)
    listed = tfchat("history", "--history", str(path), "--format", "jsonl")  # read-only: nothing is changed
    assert listed.returncode == 0 and json.loads(listed.stdout)["conversation"] is None, listed.stderr
    history = History(path)
    [old] = history.recent()
    assert old.prompt == "kept before" and old.conversation is None
    first = history.new_conversation("m")
    history.add(Exchange("Hi", " there", "book", {}, {}, "m", "length", conversation=first))
    history.add(Exchange("", " more", "book", {}, {}, "m", "length", kind="continue", conversation=first))
    second = history.new_conversation("m")
    history.add(Exchange("Later", " on", "book", {}, {}, "m", "length", conversation=second))
    assert history.last_conversation() == second and history.last_conversation(other_than=second) == first
    about = history.conversation(first)
    assert (about.title, about.exchanges) == ("Hi", 2)  # the title is the first prompt, not a continue's
    assert [e.output for e in history.conversation_exchanges(first)] == [" there", " more"]
    assert [e.output for e in history.conversation_exchanges(first, limit=1)] == [" more"]
    assert history.conversation(12345) is None
