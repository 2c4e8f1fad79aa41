"""What a newcomer expects day to day, driven through the real app with Pilot."""
import re

from textual.containers import Vertical

from tfchat.core.store.history import History
from tfchat.core.engine.tokenizer import load_encoding
from tfchat.core.settings.presets import load_presets
from tfchat.core.system.paths import user_presets_file
from support.pilot import finished, history_rows, notices, ready, send, shown_text, views, wait_for
from tfchat.tui.chat.bindings import CHAT_BINDINGS, PAIRS, shown_bindings
from tfchat.tui.screens.history_screen import HistoryScreen
from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.widgets.key_bar import KeyBar
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.widgets.sidebar import PresetSidebar
from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.transcript.pane import Notice, Transcript


def status_text(app) -> str:
    return str(app.query_one(StatusLine).render())


async def test_the_status_line_shows_the_preset_and_the_context_against_the_window(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert "greedy" in status_text(app) and "greedy *" not in status_text(app)
        await send(pilot, "/set max_new_tokens 3")
        assert "greedy *" in status_text(app)  # the /set change shows with the sidebar hidden too
        prompt = app.query_one(PromptInput)
        prompt.insert("The customer wants value")
        tokens = len(load_encoding().encode("The customer wants value"))
        await wait_for(pilot, lambda: f"ctx {tokens}/32" in status_text(app), what=f"ctx {tokens}/32")
        prompt.insert(" and more" * 40)
        await wait_for(pilot, lambda: re.search(r"ctx \d+/32 cropped", status_text(app)), what="cropped")


async def test_a_cropped_context_is_said_in_the_exchange(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 2")
        await send(pilot, "Short")
        await send(pilot, "word " * 100)
        await finished(pilot, 2)
        short, long = views(app)
        assert short.note_shown is None
        note = long.note_shown
        tokens = len(load_encoding().encode("word " * 100))
        assert note is not None and f"{tokens} tokens" in note and "last 32" in note
        assert f"first {tokens - 32} " in note


async def test_prompt_and_continuation_read_as_one_text(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 6")
        await send(pilot, "Therefore the salesperson")
        await finished(pilot, 1)
        view = views(app)[0]
        shown = view.shown_text
        assert shown.startswith("Therefore the salesperson" + view.output.split("\n")[0])


async def test_the_sidebar_hides_itself_when_narrow_and_its_key_still_works(app_factory):
    app = app_factory()
    async with app.run_test(size=(60, 20)) as pilot:
        await ready(pilot)
        sidebar = app.query_one(PresetSidebar)
        assert not sidebar.display
        assert app.query_one(PromptInput).size.width > 40
        await pilot.press("ctrl+s")
        assert sidebar.display
        await pilot.press("ctrl+s")
        assert not sidebar.display
    async with app_factory().run_test(size=(100, 30)) as pilot:
        assert pilot.app.query_one(PresetSidebar).display


async def test_the_key_bar_never_shows_fewer_keys_on_a_wider_terminal(app_factory):
    shown = {}
    for size in ((80, 24), (100, 30), (160, 45)):
        app = app_factory()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            bar = str(app.query_one(KeyBar).render())
            shown[size[0]] = (bar.count("\n") + 1, {key for key in re.findall(r"(\S+) [a-z]+", bar)})
            assert "f1 palette" in bar and "esc stop" in bar
    assert shown[80][1] <= shown[100][1] <= shown[160][1]
    assert {"f3", "f5", "f6", "f12", "^t", "f8"} <= shown[100][1]  # the two lines at 100 hold all but the last
    every = {app.get_key_display(b) if not b.key_display else b.key_display for b in shown_bindings()} | {"f1"}
    assert shown[160][1] == every and shown[80][0] == shown[100][0] == shown[160][0] == 2


async def test_the_transcript_scrolls_from_the_prompt(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(80, 20)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 150")
        await send(pilot, "Scroll me")
        await finished(pilot, 1)
        transcript = app.query_one(Transcript)
        assert transcript.max_scroll_y > 5 and app.query_one(PromptInput).has_focus
        await pilot.press("ctrl+end")
        bottom = transcript.scroll_y
        await pilot.press("pageup")
        await wait_for(pilot, lambda: transcript.scroll_y < bottom, what="page up")
        await pilot.press("ctrl+home")
        await wait_for(pilot, lambda: transcript.scroll_y == 0, what="top")
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: transcript.scroll_y > 0, what="page down")
        assert app.query_one(PromptInput).has_focus


def shows_its_end(transcript, view) -> bool:
    """The exchange's last line is inside the transcript's visible rows."""
    bottom = view.region.bottom - 1
    return transcript.region.y <= bottom < transcript.region.bottom


async def test_a_new_exchange_is_followed_after_scrolling_up_and_after_clear(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 150")
        for number, prompt in enumerate(["One", "Two"], start=1):
            await send(pilot, prompt)
            await finished(pilot, number)
        transcript = app.query_one(Transcript)
        await pilot.press("pageup", "pageup")
        await wait_for(pilot, lambda: transcript.scroll_y < transcript.max_scroll_y - 10, what="scrolled up")
        await send(pilot, "Three")  # read back while it is still scrolled up: sending follows again
        await finished(pilot, 3)
        await pilot.pause()
        assert shows_its_end(transcript, views(app)[-1])
        await pilot.press("pageup", "pageup", "ctrl+l")
        await send(pilot, "Four")
        await finished(pilot, 1)
        await pilot.pause()
        assert [v.prompt for v in views(app)] == ["Four"] and shows_its_end(transcript, views(app)[0])
        assert transcript.scroll_y == transcript.max_scroll_y


def overlaps(a, b) -> bool:
    return bool(a.region.intersection(b.region).area)


async def test_notices_sit_in_a_row_of_their_own_in_the_chat_and_in_the_inside_views(app_factory):
    for size in ((80, 24), (100, 30), (160, 45)):
        async with app_factory(preset="greedy").run_test(size=size, notifications=True) as pilot:
            app = pilot.app
            await ready(pilot)
            await pilot.press("ctrl+t")
            await pilot.pause()
            row = app.query_one(NoticeRow)
            assert row.message.startswith("Mode: continue") and row.display
            assert not list(app.query("Toast"))  # nothing drawn over the chat
            for widget in (app.query_one(StatusLine), app.query_one(PromptInput), app.query_one(KeyBar)):
                assert not overlaps(row, widget)
            assert "Mode: continue" in str(row.render())
            await send(pilot, "Hello")
            await finished(pilot, 1)
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history browser")
            await pilot.press("ctrl+o")
            browser_row = app.screen.query_one(NoticeRow)
            assert browser_row.message.startswith("Copied") and not list(app.query("Toast"))
            await pilot.pause()
            for widget in (app.screen.query_one("#search"), app.screen.query_one("#hint")):
                assert not overlaps(browser_row, widget)
            await pilot.press("escape")
            await pilot.pause()
            assert not list(app.query("Toast"))  # and nothing follows the user back to the chat


async def test_a_whitespace_only_enter_sends_nothing_and_leaves_nothing(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        prompt = app.query_one(PromptInput)
        prompt.load_text("   \n  ")
        await pilot.press("enter")
        assert prompt.text == "" and views(app) == [] and not app.chat.session.pending


async def test_an_initial_prompt_is_sent_once_the_model_is_ready(app_factory):
    app = app_factory(preset="greedy", initial_prompt="Customers want")
    async with app.run_test() as pilot:
        await finished(pilot, 1)
        assert views(app)[0].prompt == "Customers want" and views(app)[0].output


async def test_clear_during_a_generation_keeps_the_running_exchange(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 3")
        await send(pilot, "Old one")
        await finished(pilot, 1)
        await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "Still running")
        await wait_for(pilot, lambda: len(views(app)) == 2 and views(app)[1].output, what="output")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert [v.prompt for v in views(app)] == ["Still running"] and app.chat.session.active is not None
        grown = len(views(app)[0].output)
        await wait_for(pilot, lambda: len(views(app)[0].output) > grown, what="it goes on, visibly")
        await pilot.press("escape")
        await finished(pilot, 1)


async def test_the_palette_finds_commands_by_the_key_bar_words_presets_and_slash_commands(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert any(t.lower().startswith("regen") for t in titles)
        assert {f"Preset: {name}" for name in app.chat.presets.catalog.names()} <= set(titles)
        assert any(t.startswith("Save") for t in titles) and any(t.startswith("Help") for t in titles)
        assert any(t.startswith("History") for t in titles)
        for command in commands:  # a key appears once: in the help line, not the title too
            assert not re.search(r"\((ctrl|alt|f\d)", command.title)
        await pilot.press("f1")
        await pilot.press(*"regen")
        await pilot.pause(0.5)
        assert "Regen" in str(app.screen.query("CommandList").first().get_option_at_index(0).prompt)


async def test_save_writes_what_produced_each_exchange(app_factory, tmp_path):
    app = app_factory(preset="balanced")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set seed 7")
        await send(pilot, "/set max_new_tokens 5")
        await send(pilot, "Saved prompt")
        await finished(pilot, 1)
        target = tmp_path / "t.md"
        await send(pilot, f"/save {target}")
    saved = target.read_text()
    assert "## 1. balanced · length" in saved and "temperature 0.7" in saved and "seed: 7" in saved
    assert "5 new tokens" in saved and "stopped by the user: no" in saved and "Saved prompt" in saved


async def test_the_history_browser_searches_and_sends_a_past_prompt_again(app_factory):
    store = History(app_factory.history)
    from tfchat.core.store.history import Exchange
    for prompt in ("Pricing talk", "Closing a deal", "Pricing again"):
        store.add(Exchange(prompt, f" about {prompt}", "greedy", {}, {"new_tokens": 3}, "m", "length"))
    store.close()
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 3")
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, HistoryScreen) and len(screen.found) == 3
        await pilot.press(*"pricing")
        await pilot.pause()
        assert [e.prompt for e in screen.found] == ["Pricing again", "Pricing talk"]
        await pilot.press("down")
        await pilot.press("ctrl+o")
        assert app.clipboard == " about Pricing talk"
        await pilot.press("enter")
        await finished(pilot, 1)
        assert views(app)[0].prompt == "Pricing talk" and not isinstance(app.screen, HistoryScreen)
        await pilot.press("f2")
        await pilot.press("escape")
        assert not isinstance(app.screen, HistoryScreen)


async def test_the_history_browser_fits_80_columns_shows_each_kind_finds_continuations_and_loads_to_edit(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 4")
        await send(pilot, "Quarterly pricing review for the sales team")
        await finished(pilot, 1)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: len(History(app_factory.history).recent()) == 2, what="the continuation's row")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the browser")
        screen = app.screen
        await pilot.press(*"quarterly")
        await pilot.pause()
        assert [e.kind for e in screen.found] == ["continue", "prompt"]  # found by its exchange's prompt
        results = screen.query_one("#results")
        lines = [str(line.text) for line in (results.render_line(y) for y in range(len(screen.found)))]
        assert "continue Quarterly" in lines[0] and "greedy" in lines[0]
        assert "Quarterly" in lines[1] and "continue" not in lines[1]  # one row each: nothing wraps
        hint = screen.query_one("#hint")
        assert "esc closes" in str(hint.render()) and hint.region.bottom <= screen.query_one(Vertical).region.bottom
        await pilot.press("ctrl+e")
        await pilot.pause()
        prompt = app.query_one(PromptInput)
        assert not isinstance(app.screen, HistoryScreen) and prompt.text == "Quarterly pricing review for the sales team"
        assert len(views(app)) == 1 and prompt.cursor_location == prompt.document.end  # loaded, not sent
        await pilot.press(*" in March", "enter")
        await finished(pilot, 2)
        assert views(app)[1].prompt == "Quarterly pricing review for the sales team in March"


async def test_help_names_every_key_whole_and_its_wrapped_lines_keep_their_indent(app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await send(pilot, "/help")
        await pilot.pause()
        notice = app.query(Notice).last()
        text = notice.plain
        for binding in CHAT_BINDINGS:
            if binding.tooltip and binding.key not in {partner for partner, _, _ in PAIRS.values()}:
                assert (binding.tooltip in text) or binding.key in PAIRS, binding.key
        assert "f7" in text and "Next / previous preset" in text and "Previous / next branch" in text
        assert "PgUp/PgDn" in text
        lines = notice.laid_out(notice.size.width).splitlines()  # as shown at 80 columns, sidebar shown
        keys, commands = lines.index("Keys:"), lines.index("Commands:")
        assert all(line.startswith("  ") for line in lines[keys + 1:commands])
        assert sum(1 for line in lines[keys + 1:commands] if line.startswith("   " + " " * 8)) > 3  # wrapped, under the text


async def test_set_unset_and_preset_save_say_what_they_did_in_plain_words(app_factory, tmp_path):
    app = app_factory(preset="balanced")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await send(pilot, "/set top_k none")
        assert notices(app)[-1].startswith("balanced: top_k off for this session")
        await send(pilot, '/set stop "\\n\\n" "###"')
        assert notices(app)[-1].startswith('balanced: stop "\\n\\n" "###" for this session')
        await pilot.pause()
        sidebar_text = shown_text(app.query_one(PresetSidebar).query_one("#preset-params"))
        assert '"\\n\\n"' in sidebar_text and '"###" *' in sidebar_text and "None" not in sidebar_text
        assert re.search(r"seed +fresh each\n +time", sidebar_text)  # a wrapped value stays in its column
        await send(pilot, "/unset top_k")
        assert notices(app)[-1] == "balanced: top_k back to the preset's 50"
        await send(pilot, "/preset greedy")
        await send(pilot, "/set max_new_tokens 7")
        await send(pilot, "/preset save mine")  # greedy with its change, under a new name
        assert "Saved greedy with its /set changes as 'mine'" in notices(app)[-1]
        assert app.chat.presets.name == "mine" and app.chat.current_params().max_new_tokens == 7
        await send(pilot, "/preset save balanced")
        assert "a preset named 'balanced' exists already" in notices(app)[-1]
        await send(pilot, "/unset all")  # every preset's changes, not only the active one's
        assert notices(app)[-1] == "Undid every /set: balanced (stop); greedy (max_new_tokens)"
        assert app.chat.presets.params_for("balanced") == app.chat.presets.catalog.get("balanced").params
        await send(pilot, "/unset all")
        assert notices(app)[-1] == "Nothing was changed with /set."
        await send(pilot, f"/save {tmp_path}/t.md")
        assert notices(app)[-1] == "/save: nothing to save: the transcript has no exchange yet"
        assert not (tmp_path / "t.md").exists()
    saved = load_presets(user=user_presets_file())
    assert saved.get("mine").params.max_new_tokens == 7 and saved.get("mine").params.temperature == 0
    assert saved.get("mine").description == "greedy with max_new_tokens 7"  # not greedy's "the same output…"


async def test_preset_save_describes_what_the_set_changed(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set temperature 0.3")
        await send(pilot, "/set top_k 5")
        await send(pilot, "/set max_new_tokens 200")  # greedy's own value: no change to describe
        await send(pilot, "/preset save warmer")
        await send(pilot, "/preset save plain")  # warmer, unchanged: its description carries over
    saved = load_presets(user=user_presets_file())
    assert saved.get("warmer").description == "greedy with temperature 0.3, top_k 5"
    assert saved.get("plain").description == "greedy with temperature 0.3, top_k 5"


async def test_a_continuation_counts_its_new_tokens_and_the_text_in_all_and_f8_knows_a_comparisons_speed(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 40")
        await send(pilot, "The customer")
        await finished(pilot, 1)
        view = views(app)[0]
        assert view.summary_shown.startswith("40 tokens · ")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.chat.session.active is None and "in all" in view.summary_shown,
                       what="the continuation's stats")
        assert view.summary_shown.startswith("40 new tokens, 80 in all · ") and len(view.branch.steps) == 80
        lines = [line.strip() for line in shown_text(view.query_one(".stats")).splitlines() if line.strip()]
        assert len(lines) == 2  # 100 columns, the sidebar shown: it wraps, between two parts only
        pieces = {piece.strip(" ·") for line in lines for piece in line.replace("\u00a0", " ").split(" · ")}
        assert pieces <= set(view.summary_shown.split(" · "))
        await send(pilot, "/compare greedy book")
        await send(pilot, "Hello")
        await wait_for(pilot, lambda: app.chat.session.active is None and not app.chat.session.pending
                       and app.chat.inside.last_tokens_per_s is not None and len(history_rows(app_factory.history)) == 4,
                       what="the comparison")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        summary = str(app.screen.query_one("#summary").render())
        assert "last speed" in summary and "no generation yet" not in summary


async def test_ctrl_c_stops_a_generation_and_keeps_it_marked_stopped_as_esc_does(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 0")  # until stopped: only the key ends it
        await send(pilot, "Once")
        await wait_for(pilot, lambda: views(app) and len(views(app)[0].output) > 20, what="some output")
        await pilot.press("ctrl+c")
        await finished(pilot, 1)
        view = views(app)[0]
        assert "stopped" in view.summary_shown and view.output
        assert app.is_running  # ctrl+c stopped the generation, not the app
    assert history_rows(app_factory.history)[0][4] == "stopped"


async def test_ctrl_c_with_nothing_running_says_how_to_quit_in_rendered_words(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("ctrl+c")
        row = app.query_one(NoticeRow)
        assert row.display and "ctrl+q quits" in row.message and "[b]" not in shown_text(row)
        assert app.is_running


async def test_a_notice_with_brackets_in_a_name_is_shown_as_it_is(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        app.notify("Loading draft[1].ckpt beside the others")
        await pilot.pause()
        assert shown_text(app.query_one(NoticeRow)).strip() == "Loading draft[1].ckpt beside the others"


async def test_ctrl_d_quits_on_an_empty_prompt_and_deletes_forward_otherwise(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        prompt = app.query_one(PromptInput)
        prompt.load_text("abc")
        prompt.move_cursor((0, 1))
        await pilot.press("ctrl+d")
        assert prompt.text == "ac" and app.is_running
        prompt.load_text("")
        await pilot.press("ctrl+d")
        await pilot.pause()
    assert app.return_code == 0
