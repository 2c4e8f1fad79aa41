"""Several models resident at once: the sidebar lists them, f10 and /model switch, /compare --models puts
them side by side, and the CLI takes --model more than once. Real checkpoints, the real app under Pilot."""
import sqlite3

import pytest

from tfchat.core.engine.in_process import Engine
from tfchat.core.engine.model_set import refusal_to_load
from tfchat.core.settings.presets import load_presets
from support.cli import tfchat
from support.pilot import compare_views, compared, notices, ready, send, wait_for
from tfchat.tui.app import make_app
from tfchat.tui.widgets.sidebar import PresetSidebar
from tfchat.tui.widgets.status_line import StatusLine


@pytest.fixture
def two_models(make_checkpoint):
    """Two different models of cl100k's vocabulary (the same shape, other weights)."""
    return [make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=seed,
                            name=f"model-{seed}.ckpt") for seed in (7, 8)]


def greedy_alone(path, prompt, tokens=20):
    engine = Engine.load(path, "cpu")
    try:
        return "".join(engine.generate(prompt, load_presets().get("greedy").params.with_changes(max_new_tokens=tokens)))
    finally:
        engine.close()


def sidebar_models(app) -> str:
    return str(app.query_one(PresetSidebar).query_one("#models").render())


async def test_two_models_listed_switched_and_compared_side_by_side(two_models, tmp_path):
    history = tmp_path / "history.sqlite3"
    app = make_app([str(p) for p in two_models], "cpu", "greedy", str(history), engine_loader=Engine.load)
    first, second = (p.name for p in two_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(app.shelf.ready()) == 2, what="the second model loaded")
        # The sidebar redraws on the UI thread after the load: wait for it to list both as loaded.
        await wait_for(pilot, lambda: sidebar_models(app).count("MiB") == 2, what="the sidebar listing both")
        listed = sidebar_models(app)
        assert f"● 1 {first}" in listed and f"  2 {second}" in listed and listed.count("MiB") == 2
        status = app.query_one(StatusLine)
        assert status.model_name == first
        await pilot.press("f10")
        await wait_for(pilot, lambda: status.model_name == second, what="f10 switching")
        assert app.chat.engine is app.shelf.slots[1].backend and f"● 2 {second}" in sidebar_models(app)
        await send(pilot, "/set max_new_tokens 20")
        await send(pilot, "The sales team")  # to the second model now
        await wait_for(pilot, lambda: app.chat.session.active is None and app.query("ExchangeView"), what="a reply")
        await send(pilot, "/model 1")
        await wait_for(pilot, lambda: status.model_name == first, what="/model 1")
        await send(pilot, "/compare --models greedy")
        assert status.compare == "2 models · greedy"
        await send(pilot, "The sales team")
        await compared(pilot)
        view = compare_views(app)[0]
        assert [c.label for c in view.columns] == [first, second]
        assert all(c.finish_reason == "length" for c in view.columns)
        outputs = [c.output for c in view.columns]
        await pilot.press("f7")  # keep a column: and f7 again, the next; the session goes on with its model
        await pilot.press("f7")
        await wait_for(pilot, lambda: status.model_name == second, what="the kept column's model active")
        await send(pilot, "/model nope")
        assert any("no model 'nope'" in n for n in notices(app))
    # Each column is that model's own greedy text; the history says which model wrote which.
    assert outputs == [greedy_alone(p, "The sales team") for p in two_models] and outputs[0] != outputs[1]
    with sqlite3.connect(history) as db:
        rows = db.execute("SELECT kind, model, output FROM exchanges ORDER BY id").fetchall()
    assert rows[0][0] == "prompt" and rows[0][1].endswith(second)
    assert [(kind, model) for kind, model, _ in rows[1:]] == [("compare", first), ("compare", second)]


async def test_model_add_loads_another_beside_the_first(two_models, tmp_path):
    app = make_app(str(two_models[0]), "cpu", "greedy", str(tmp_path / "h.sqlite3"), engine_loader=Engine.load)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert not app.query_one(PresetSidebar).query_one("#models").display  # one model: no list
        await send(pilot, f"/model add {two_models[1]}")
        await wait_for(pilot, lambda: len(app.shelf.ready()) == 2, what="the added model")
        await wait_for(pilot, lambda: two_models[1].name in sidebar_models(app), what="listed")
        await send(pilot, f"/model add {tmp_path / 'missing.ckpt'}")
        assert any("no such file" in n for n in notices(app))


def test_a_model_that_does_not_fit_is_refused_in_one_line(two_models):
    assert refusal_to_load(two_models[0], available=10**12) is None
    line = refusal_to_load(two_models[0], available=1000)
    assert "MiB available; not loaded" in line and "\n" not in line


def test_the_cli_takes_several_models_where_it_can(two_models):
    r = tfchat("--model", str(two_models[0]), "--model", str(two_models[1]), "generate", "--preset", "greedy",
               "--max-new-tokens", "12", "The sales team")
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("\n\n=== model: ")
    assert first.startswith(f"=== model: {two_models[0]} ===\n") and second.startswith(f"{two_models[1]} ===\n")
    assert first.split("===\n", 1)[1].rstrip("\n") == greedy_alone(two_models[0], "The sales team", 12)
    r = tfchat("--model", str(two_models[0]), "--model", str(two_models[1]), "info")
    assert r.returncode == 2 and "takes one --model" in r.stderr and len(r.stderr.strip().splitlines()) == 1


async def test_compare_models_while_the_second_still_loads_waits_for_it_then_compares_both(two_models, tmp_path):
    import threading

    gate = threading.Event()  # the second model's load is held until the prompt is waiting

    def loader(path, device):
        if path == two_models[1]:
            gate.wait(60)
        return Engine.load(path, device)

    app = make_app([str(p) for p in two_models], "cpu", "greedy", str(tmp_path / "h.sqlite3"), engine_loader=loader)
    second = two_models[1].name
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            assert app.shelf.slots[1].state == "loading"
            await send(pilot, "/compare --models greedy")
            assert notices(app)[-1].startswith(f"{second} is still loading: each prompt goes to ")
            await send(pilot, "/set max_new_tokens 5")
            await send(pilot, "The sales team")
            await pilot.pause(0.3)
            assert compare_views(app) == [] and app.query_one(StatusLine).queued == 1  # it waits, not one column
            gate.set()
            await compared(pilot)
            view = compare_views(app)[0]
            assert [column.label for column in view.columns] == [p.name for p in two_models]
            assert all(column.output for column in view.columns)
    finally:
        gate.set()
