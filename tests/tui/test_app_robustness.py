"""The app keeps running through what users do to it: bad /set values, broken history databases, quitting early."""
import json
import multiprocessing
import sqlite3
import time

from tfchat.core.errors import CheckpointError
from tfchat.core.store.history import History
from tfchat.core.system.lifecycle import register_child
from support.pilot import finished, history_rows, notices, ready, send, views, wait_for
from tfchat.tui.app import make_app


async def test_set_values_that_are_not_values_are_notices_not_crashes(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test() as pilot:
        await ready(pilot)
        for typed, needle in (("/set temperature [1,", "temperature must be a number"),
                              ("/set top_k {", "top_k must be an integer"),
                              ("/set temperature nan", "temperature"),
                              ("/set seed 99999999999999999999999", "seed"),
                              ("/set temperature 1e-45", "temperature")):
            await send(pilot, typed)
            assert needle in notices(app)[-1] and "\n" not in notices(app)[-1], typed
        assert app.chat.current_params() == app.chat.presets.catalog.get("balanced").params
        await send(pilot, '/set stop "\\n\\n" "###"')
        assert app.chat.current_params().stop == ("\n\n", "###")
        await send(pilot, "/set top_k none")
        assert app.chat.current_params().top_k is None
        assert app.is_running


async def test_a_corrupt_history_database_leaves_the_app_working_with_a_notice(app_factory, small_model, tmp_path):
    broken = tmp_path / "corrupt.sqlite3"
    broken.write_bytes(b"not a database at all " * 500)
    app = make_app(str(small_model), "cpu", "greedy", str(broken))
    async with app.run_test() as pilot:
        await ready(pilot)
        assert any("History is off" in n and "corrupt.sqlite3" in n for n in notices(app))
        await pilot.press("ctrl+n")  # switching presets writes the last preset: must not crash
        await send(pilot, "/preset greedy")
        await send(pilot, "/set max_new_tokens 4")
        await send(pilot, "Still works")
        await finished(pilot, 1)
        assert views(app)[0].output
    assert broken.read_bytes() == b"not a database at all " * 500  # nothing of the user's is overwritten


async def test_a_foreign_database_is_not_touched(small_model, tmp_path):
    foreign = tmp_path / "other.sqlite3"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE exchanges (id INTEGER PRIMARY KEY, body BLOB)")
        db.execute("INSERT INTO exchanges (body) VALUES (x'00')")
    app = make_app(str(small_model), "cpu", "greedy", str(foreign))
    async with app.run_test() as pilot:
        await ready(pilot)
        assert any("not tfchat's" in n for n in notices(app))
    with sqlite3.connect(foreign) as db:
        assert db.execute("SELECT count(*) FROM exchanges").fetchone() == (1,)


async def test_a_history_locked_by_another_process_is_a_notice(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        other = sqlite3.connect(app_factory.history, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another tfchat, or a user's sqlite3 shell, holding the write lock
        try:
            await pilot.press("ctrl+n")
            await wait_for(pilot, lambda: any("locked" in n for n in notices(app)), what="a locked notice")
            await send(pilot, "/preset greedy")
            await send(pilot, "/set max_new_tokens 3")
            await send(pilot, "Locked out")
            await finished(pilot, 1)
            assert views(app)[0].output and app.is_running
        finally:
            other.execute("ROLLBACK")
            other.close()
        await send(pilot, "Unlocked")
        await finished(pilot, 2)
    assert [row[1] for row in history_rows(app_factory.history)] == ["Unlocked"]


async def test_a_full_or_read_only_history_is_a_notice(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        # SQLite's own limits, on the app's own connection: a disk that fills up, a file turned read-only.
        pages = app.history._db.execute("PRAGMA page_count").fetchone()[0]
        app.history._db.execute(f"PRAGMA max_page_count = {pages}")
        await send(pilot, "/set max_new_tokens 3")
        await send(pilot, "A long prompt to overflow the page. " * 300)
        await finished(pilot, 1)
        assert any("full" in n for n in notices(app))
        app.history._db.execute("PRAGMA query_only = ON")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: any("readonly" in n for n in notices(app)), what="a read-only notice")
        assert app.is_running


def _never_answering_loader(path, device):
    """Like EngineProcess.load on a slow disk: a real child that never reports back."""
    process = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(3600,), daemon=True)
    process.start()
    register_child(process)
    process.join()  # returns only when the child is ended
    raise CheckpointError(f"{path}: the engine process ended while loading")


async def test_quit_while_loading_is_immediate_and_ends_the_loading_child(app_factory):
    app = make_app(str(app_factory.model), "cpu", "greedy", str(app_factory.history),
                   engine_loader=_never_answering_loader)
    started = time.monotonic()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: multiprocessing.active_children(), what="the loading child")
        child = multiprocessing.active_children()[0]
        await pilot.press("ctrl+q")
    assert time.monotonic() - started < 10 and not app.is_running
    child.join(2)
    assert child.exitcode is not None


async def test_quit_mid_generation_keeps_the_partial_with_its_token_count(app_factory):
    app = app_factory(preset="balanced", engine_process=True)
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "Long")
        await wait_for(pilot, lambda: views(app) and len(views(app)[0].output) > 30, what="output")
        await pilot.press("ctrl+q")
    kind, prompt, output, preset, reason, stats = history_rows(app_factory.history)[-1]
    assert reason == "quit" and output and json.loads(stats)["new_tokens"] >= 1
    assert History(app_factory.history).recent()[-1].output == output


async def test_no_command_the_user_types_can_end_the_app(app_factory, tmp_path):
    """`/save ~nouser/x.md` raised out of the app (pathlib cannot find that home); every command is a notice."""
    app = app_factory(preset="greedy", engine_process=True)
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "Something to save")
        await finished(pilot, 1)
        for typed, needle in (("/save ~nosuchuser_tfchat/x.md", "no such user's home directory"),
                              (f"/save {tmp_path}", "/save:"),  # a directory
                              ("/save /proc/nope/x.md", "/save:")):
            await send(pilot, typed)
            assert needle in notices(app)[-1] and "Traceback" not in notices(app)[-1], typed
        assert app.is_running
        await send(pilot, "Still here")
        await finished(pilot, 2)


def test_a_model_path_under_an_unknown_users_home_is_one_line():
    from support.cli import tfchat

    r = tfchat("generate", "--model", "~nosuchuser_tfchat/m.ckpt", "Hi")
    assert r.returncode == 2 and "no such user's home directory" in r.stderr and len(r.stderr.splitlines()) == 1
