"""Comparing presets and prompts side by side: the engine's batch as text, the CLI, the app."""
import json

import pytest
from textual.app import App

from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.presets import load_presets
from support.cli import tfchat


def test_generate_compare_prints_a_header_per_preset_and_a_greedy_row_is_the_single_run(small_model):
    compared = tfchat("generate", "The sales team", "--model", str(small_model), "--compare", "greedy,creative",
                      "--max-new-tokens", "12", "--seed", "4")
    assert compared.returncode == 0, compared.stderr
    single = tfchat("generate", "The sales team", "--model", str(small_model), "--preset", "greedy",
                    "--max-new-tokens", "12")
    blocks = compared.stdout.split("\n\n")
    assert blocks[0].startswith("== greedy ==\n") and blocks[1].startswith("== creative ==\n")
    assert blocks[0].removeprefix("== greedy ==\n") == single.stdout.rstrip("\n")


def test_generate_prompts_file_as_jsonl_one_object_per_row(small_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Customers often\n\nThe product\n", encoding="utf-8")
    r = tfchat("generate", "--model", str(small_model), "--prompts-file", str(prompts), "--prompt", "Sales",
               "--preset", "greedy", "--max-new-tokens", "6", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["prompt"] for row in rows] == ["Sales", "Customers often", "The product"]
    assert {row["preset"] for row in rows} == {"greedy"}
    assert all(row["stats"]["new_tokens"] == 6 and row["stats"]["finish_reason"] == "length" and row["text"]
               for row in rows)


@pytest.mark.parametrize("args,needle", [
    (("--compare", "greedy,nope", "x"), "unknown preset 'nope'"),
    (("--compare", "greedy", "--trace", "x"), "do not combine"),
    (("--prompts-file", "/nonexistent/prompts.txt"), "/nonexistent/prompts.txt"),
])
def test_compare_mistakes_are_one_line_and_exit_2(small_model, args, needle):
    r = tfchat("generate", "--model", str(small_model), *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_engine_batch_rows_stop_at_their_own_stop_strings_and_keep_the_others_going(small_model):
    engine = Engine.load(small_model, "cpu")
    catalog = load_presets()
    greedy = catalog.get("greedy").params
    alone = "".join(engine.generate("The sales team", greedy.with_changes(max_new_tokens=30)))
    stop_at = alone.split()[3]  # a word that comes up a few tokens in
    rows = [greedy.with_changes(max_new_tokens=30, stop=(stop_at,)), greedy.with_changes(max_new_tokens=30)]
    batch = engine.generate_batch(["The sales team"] * 2, rows)
    ended = [event.row for event in batch if event.stats is not None]
    assert ended == [0, 1]  # the stopped row ends first
    assert batch.stats[0].finish_reason == "stop" and stop_at not in batch.texts[0]
    assert alone.startswith(batch.texts[0])
    assert batch.texts[1] == alone and batch.stats[1].finish_reason == "length"
    engine.close()


def test_bench_batch_prints_the_aggregate_rate_and_its_ratios(make_checkpoint):
    r = tfchat("bench", "--batch", "3", "--model", str(make_checkpoint(context_length=24)), "--tokens", "8")
    assert r.returncode == 0, r.stderr
    assert "batch of 3 rows, all rows together" in r.stdout
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 3 and figures["batch_tokens_per_s"] > 0
    assert figures["ratio_vs_one_row"] == round(figures["batch_tokens_per_s"] / figures["batch_of_1_tokens_per_s"], 2)


# ----- the app's compare mode, driven by Pilot on the real app and engine process -----------------------

from support.pilot import history_rows, ready, send, wait_for  # noqa: E402
from tfchat.tui.widgets.status_line import StatusLine  # noqa: E402
from tfchat.tui.transcript.compare_view import CompareView  # noqa: E402
from tfchat.tui.transcript.pane import Transcript  # noqa: E402
from support.pilot import compare_views, compared  # noqa: E402


async def test_compare_at_120_columns_streams_a_column_per_preset_side_by_side_and_records_each(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "/compare greedy creative")
        assert app.query_one(StatusLine).compare == "greedy, creative"
        await send(pilot, "/set max_new_tokens 30")  # on balanced, the active preset: not compared
        await send(pilot, "The sales team")
        await compared(pilot)
        view = compare_views(app)[0]
        greedy, creative = view.columns
        assert not view.has_class("stacked")
        assert greedy.region.y == creative.region.y and greedy.region.x < creative.region.x
        assert [c.label for c in view.columns] == ["greedy", "creative"]
        assert greedy.finish_reason == creative.finish_reason == "length"
        assert "tok/s" in greedy.summary_shown
        assert not app.query_one(Transcript).exchanges()  # nothing kept yet
    engine = Engine.load(app_factory.model, "cpu")
    single = "".join(engine.generate("The sales team", load_presets().get("greedy").params))
    engine.close()
    assert greedy.output == single  # the batched greedy column is the single greedy run
    rows = history_rows(app_factory.history)
    assert [(kind, preset, reason) for kind, _, _, preset, reason, _ in rows] == [
        ("compare", "greedy", "length"), ("compare", "creative", "length")]
    assert rows[0][2] == greedy.output and rows[1][2] == creative.output


async def test_compare_at_80_columns_stacks_the_columns_and_escape_stops_them_all(app_factory):
    app = app_factory(preset="balanced", engine_process=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        for name in ("balanced", "creative", "book"):
            await send(pilot, f"/preset {name}")
            await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "/compare balanced creative book")
        await send(pilot, "Once")
        await wait_for(pilot, lambda: compare_views(app) and all(len(c.output) > 20 for c in compare_views(app)[0].columns),
                       what="every column writing")
        view = compare_views(app)[0]
        assert view.has_class("stacked")
        first, second, third = view.columns
        assert first.region.x == second.region.x and first.region.y < second.region.y < third.region.y
        await pilot.press("escape")
        await compared(pilot)
        assert [c.finish_reason for c in view.columns] == ["stopped"] * 3
        assert all("stopped" in c.summary_shown for c in view.columns)
    rows = history_rows(app_factory.history)
    assert sorted(preset for _, _, _, preset, _, _ in rows) == ["balanced", "book", "creative"]
    assert {reason for _, _, _, _, reason, _ in rows} == {"stopped"}


async def test_keep_makes_a_column_the_exchange_the_session_continues_and_blind_labels_reveal(app_factory, tmp_path):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "/compare --blind greedy book")
        assert "greedy" not in app.query_one(StatusLine).compare
        await send(pilot, "The sales team")
        await compared(pilot)
        view = compare_views(app)[0]
        assert [c.label for c in view.columns] == ["A", "B"]
        await pilot.press("f7")
        kept = view.columns[0]
        assert view.kept == 0 and kept.label == f"A · {kept.preset}"
        assert view.columns[1].label == f"B · {view.columns[1].preset}"  # every name shows once one is kept
        exchanges = app.query_one(Transcript).exchanges()
        assert len(exchanges) == 1 and exchanges[0].output == kept.output
        assert app.chat.session.context_log == [("The sales team", kept.output)]
        await pilot.press("f7")  # the other one instead: it replaces the first, it is not added
        exchanges = app.query_one(Transcript).exchanges()
        assert view.kept == 1 and len(exchanges) == 1 and exchanges[0].output == view.columns[1].output
        assert app.chat.session.context_log == [("The sales team", view.columns[1].output)]
        await pilot.press("ctrl+g")  # continue: from the kept column
        await wait_for(pilot, lambda: app.chat.session.active is None and len(exchanges[0].output) > len(view.columns[1].output),
                       what="the continuation")
        assert exchanges[0].output.startswith(view.columns[1].output)
        await send(pilot, "/compare off")
        assert app.chat.compare.presets is None and app.query_one(StatusLine).compare == ""
        await send(pilot, f"/save {tmp_path / 'session.md'}")
    saved = (tmp_path / "session.md").read_bytes().decode("utf-8")  # as written: random text may hold \r
    assert "## 1. comparison: " in saved and f"### {view.columns[1].preset} (kept) · length" in saved
    assert view.columns[0].output in saved and "## 2. " in saved  # the kept exchange follows


async def test_ctrl_r_repeats_the_comparison_columns_start_at_their_first_word_and_a_kept_one_keeps_its_preset(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await send(pilot, "/compare greedy book")
        await send(pilot, "The sales team")
        await compared(pilot)
        first = compare_views(app)[0]
        assert not first.has_class("stacked")  # two presets sit side by side at 80 columns, sidebar shown
        greedy = first.columns[0]
        assert all(c.output and c.text_shown == c.output.lstrip(" ") for c in first.columns)
        await pilot.press("ctrl+r")  # in compare mode: the comparison again, not the active preset alone
        await compared(pilot, 2)
        again = compare_views(app)[1]
        assert [c.preset for c in again.columns] == ["greedy", "book"] and again.columns[0].output == greedy.output
        assert all(c.summary_shown != "…" for view in (first, again) for c in view.columns)
        await pilot.press("f7", "f7")  # the second column, book, while balanced is the active preset
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.chat.session.active is None and not app.chat.session.pending
                       and len(history_rows(app_factory.history)) == 5, what="the continuation")
    kind, prompt, _, preset, _, _ = history_rows(app_factory.history)[-1]
    assert (kind, preset) == ("continue", "book")


async def test_a_column_shows_its_text_from_the_first_word_and_keeps_it_exactly():
    class OneComparison(App):
        def compose(self):
            yield CompareView("The sales team", ["greedy", "book"])

    async with OneComparison().run_test(size=(80, 24)) as pilot:
        column = pilot.app.query_one(CompareView).columns[0]
        for piece in ("  ", " will", " grow"):
            column.append(piece)
        await pilot.pause()
        assert column.output == "   will grow" and column.text_shown == "will grow"
