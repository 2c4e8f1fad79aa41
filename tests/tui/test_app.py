"""The app driven by Textual's Pilot on a real (small) checkpoint: every binding and flow."""
import threading


from tfchat.core.engine.in_process import Engine
from tfchat.core.engine.engine_process import EngineProcess
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.app import make_app
from tfchat.tui.chat.bindings import CHAT_BINDINGS
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.widgets.sidebar import PresetSidebar
from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.transcript.pane import Transcript
from support.pilot import finished, history_rows, notices, ready, send, shown_text, views, wait_for


async def test_send_streams_the_continuation_and_records_it(app_factory):
    app = app_factory(preset="greedy", engine_process=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "The customer")
        await finished(pilot, 1)
        view = views(app)[0]
        expected = "".join(Engine.load(app_factory.model, "cpu").generate("The customer", app.chat.current_params()))
        assert view.prompt == "The customer" and view.output == expected
        stats_line = view.summary_shown
        assert "200 tokens" in stats_line and "tok/s" in stats_line and "greedy" in stats_line
    rows = history_rows(app_factory.history)
    assert rows[0][:5] == ("prompt", "The customer", expected, "greedy", "length")


async def test_a_prompt_sent_while_loading_waits_for_the_model(app_factory):
    may_load = threading.Event()

    def held_back_load(path, device):  # the app's own loader, held until the prompt is in
        may_load.wait(30)
        return EngineProcess.load(path, device)

    app = make_app(str(app_factory.model), "cpu", "greedy", str(app_factory.history), engine_loader=held_back_load)
    async with app.run_test() as pilot:
        await send(pilot, "Hello")
        await pilot.press("ctrl+n")  # the app is usable while loading
        assert app.chat.engine is None and len(app.chat.session.pending) == 1
        assert app.query_one(StatusLine).state == "loading" and app.query_one(StatusLine).queued == 1
        may_load.set()
        await finished(pilot, 1)
        assert views(app)[0].output and views(app)[0].preset == "greedy"


async def test_escape_stops_and_keeps_partial_output_marked_stopped(app_factory):
    app = app_factory(preset="balanced", engine_process=True)
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "Once")
        await wait_for(pilot, lambda: views(app) and len(views(app)[0].output) > 20, what="some output")
        await pilot.press("escape")
        await finished(pilot, 1)
        view = views(app)[0]
        assert "stopped" in view.summary_shown and view.output
    kind, prompt, output, preset, reason, _ = history_rows(app_factory.history)[0]
    assert reason == "stopped" and output == view.output


async def test_prompts_sent_while_generating_are_queued_in_order(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 100000")
        for text in ("first", "second", "third"):
            await send(pilot, text)
        assert app.chat.session.active is not None and len(app.chat.session.pending) == 2
        assert app.query_one(StatusLine).queued == 2
        for running in range(3):
            await wait_for(pilot, lambda: app.chat.session.active is not None and len(views(app)) == running + 1
                           and views(app)[-1].output, what=f"prompt {running + 1} generating")
            await pilot.press("escape")
        await finished(pilot, 3)
        assert [v.prompt for v in views(app)] == ["first", "second", "third"]
        assert all(v.output for v in views(app))


async def test_preset_keys_switch_and_the_last_preset_is_remembered(app_factory):
    app = app_factory()
    names = app.chat.presets.catalog.names()
    async with app.run_test() as pilot:
        start = names.index(app.chat.presets.name)
        await pilot.press("ctrl+n")
        assert app.chat.presets.name == names[(start + 1) % len(names)]
        await pilot.press("ctrl+p", "ctrl+p")
        assert app.chat.presets.name == names[(start - 1) % len(names)]
        await pilot.press("alt+3")
        assert app.chat.presets.name == names[2]
        await pilot.press("¢")  # what ESC 4 (alt+4 in tmux and xterm) arrives as in Textual
        assert app.chat.presets.name == names[3] and app.query_one(PromptInput).text == ""
        sidebar_text = str(app.query_one("#preset-list").get_option_at_index(3).prompt)
        assert sidebar_text.startswith("●")
    again = app_factory()
    assert again.chat.presets.name == names[3]


async def test_preset_switch_applies_to_the_next_prompt_while_generating(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "one")
        await pilot.press("alt+2")
        await send(pilot, "two")
        await finished(pilot, 2)
        assert [v.preset for v in views(app)] == ["greedy", app.chat.presets.catalog.names()[1]]


async def test_continue_mode_feeds_the_transcript_back(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 8")
        await send(pilot, "Alpha")
        await finished(pilot, 1)
        await pilot.press("ctrl+t")
        assert app.chat.mode == "continue" and "mode: continue" in str(app.query_one(StatusLine).render())
        await send(pilot, " Beta")
        await finished(pilot, 2)
        first, second = views(app)
        engine = Engine.load(app_factory.model, "cpu")
        params = SamplingParams(temperature=0, max_new_tokens=8)
        assert second.output == "".join(engine.generate("Alpha" + first.output + " Beta", params))
        await pilot.press("ctrl+t")
        assert app.chat.mode == "completion"
        await send(pilot, " Beta")
        await finished(pilot, 3)
        assert views(app)[2].output == "".join(engine.generate(" Beta", params))


async def test_regenerate_and_continue_keys(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 10")
        await send(pilot, "Price")
        await finished(pilot, 1)
        await pilot.press("ctrl+r")
        await finished(pilot, 2)
        first, again = views(app)
        assert again.prompt == "Price" and again.output == first.output  # greedy: same again
        before = again.output
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.chat.session.active is None and len(again.output) > len(before), what="continuation")
        assert len(views(app)) == 2 and again.output.startswith(before)
    kinds = [row[0] for row in history_rows(app_factory.history)]
    assert kinds == ["prompt", "regenerate", "continue"]


async def test_up_and_down_recall_prompts_across_runs(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 2")
        await send(pilot, "older prompt")
        await send(pilot, "newer\nprompt")
        await finished(pilot, 2)
    app = app_factory()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.query(PromptInput), what="the prompt")  # composed on a loaded box too
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press("d", "r", "a", "f", "t")
        await pilot.press("up")
        assert prompt.text == "newer\nprompt"
        await pilot.press("up")  # cursor is on the first line, so this keeps going back
        assert prompt.text == "older prompt"
        await pilot.press("down")
        assert prompt.text == "newer\nprompt"
        await pilot.press("down", "down")
        assert prompt.text == "draft"


async def test_ctrl_j_inserts_a_newline_and_enter_sends(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 2")
        app.query_one(PromptInput).focus()
        await pilot.press("a", "ctrl+j", "b")
        assert app.query_one(PromptInput).text == "a\nb"
        await pilot.press("enter")
        await finished(pilot, 1)
        assert views(app)[0].prompt == "a\nb"


async def test_slash_commands(app_factory, tmp_path):
    app = app_factory(preset="precise")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set temperature 0.25")
        assert app.chat.current_params().temperature == 0.25
        assert "temperature        0.25 *" in shown_text(app.query_one("#preset-params"))
        await send(pilot, "/set top_p 7")
        assert "top_p" in notices(app)[-1] and app.chat.current_params().top_p != 7
        await send(pilot, "/set nonsense 1")
        assert "unknown" in notices(app)[-1]
        await send(pilot, "/set")
        assert notices(app)[-1].startswith("usage: /set KEY VALUE")
        await send(pilot, "/unset temperature")
        assert app.chat.current_params().temperature == app.chat.presets.catalog.get("precise").params.temperature
        await send(pilot, "/preset creative")
        assert app.chat.presets.name == "creative"
        await send(pilot, "/preset nope")
        assert "unknown preset 'nope'" in notices(app)[-1]
        await send(pilot, "/bogus")
        assert "unknown command /bogus" in notices(app)[-1]
        await send(pilot, "/help")
        assert "ctrl+j new line" in notices(app)[-1] and "/save PATH" in notices(app)[-1]
        await send(pilot, "/preset greedy")
        await send(pilot, "/set max_new_tokens 5")
        await send(pilot, "Deal")
        await finished(pilot, 1)
        target = tmp_path / "out.md"
        await send(pilot, f"/save {target}")
        saved = target.read_text()
        assert "Deal" in saved and views(app)[0].output in saved
        await send(pilot, f"/save {tmp_path}/missing/dir/x.md")
        assert notices(app)[-1].startswith(f"/save: there is no folder {tmp_path}/missing/dir")
        await send(pilot, "/clear")
        assert views(app) == [] and app.chat.session.context_log == []
        assert app.is_running


async def test_copy_clear_sidebar_and_quit_keys(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 6")
        await send(pilot, "Copy me")
        await finished(pilot, 1)
        await pilot.press("ctrl+o")
        assert app.clipboard == views(app)[0].output
        sidebar = app.query_one(PresetSidebar)
        await pilot.press("ctrl+s")
        assert not sidebar.display
        await pilot.press("ctrl+s")
        assert sidebar.display
        await pilot.press("ctrl+l")
        assert views(app) == []
        await pilot.press("ctrl+q")
    assert not app.is_running


async def test_quitting_mid_generation_keeps_the_partial_output(app_factory):
    app = app_factory(preset="balanced", engine_process=True)
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "Long")
        await wait_for(pilot, lambda: views(app) and views(app)[0].output, what="output")
        await pilot.press("ctrl+q")
    rows = history_rows(app_factory.history)
    assert rows[-1][4] == "quit" and rows[-1][2]


async def test_no_model_explains_how_to_get_one(app_factory, tmp_path):
    app = app_factory(model=tmp_path / "absent" / "model.ckpt", engine_process=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.query_one(StatusLine).state == "no model", what="no-model state")
        text = notices(app)[-1]
        assert "No model found" in text and "tfchat train" in text and "--model" in text
        await send(pilot, "hello")
        assert "No model is loaded" in notices(app)[-1]
        assert app.is_running


async def test_a_corrupt_model_is_a_message_not_a_crash(app_factory, tmp_path):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"garbage")
    app = app_factory(model=bad, engine_process=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.query_one(StatusLine).state == "failed", what="failed state")
        assert "not a readable PyTorch checkpoint" in notices(app)[-1]


async def test_a_prompt_the_model_cannot_encode_is_reported_inline(app_factory, make_checkpoint):
    app = app_factory(model=make_checkpoint(vocab_size=500))
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "a lighthouse")
        await finished(pilot, 1)
        assert "vocabulary stops at token 499" in views(app)[0].summary_shown
        assert app.is_running


async def test_every_binding_is_in_the_command_palette(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for binding in CHAT_BINDINGS:
            if binding.show and binding.action != "app.quit":
                assert any(binding.tooltip in t for t in titles), binding.action


async def test_output_follows_the_stream_unless_the_user_scrolled_up(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test(size=(80, 20)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 100000")
        await send(pilot, "Scroll")
        transcript = app.query_one(Transcript)
        await wait_for(pilot, lambda: transcript.max_scroll_y > 10, what="output taller than the pane")
        await wait_for(pilot, lambda: transcript.scroll_y >= transcript.max_scroll_y - 1, what="following")
        transcript.scroll_to(y=0, animate=False)
        await pilot.pause(0.3)
        assert transcript.scroll_y == 0 and transcript.max_scroll_y > 10  # left where the user put it
        transcript.scroll_end(animate=False)
        grown = transcript.max_scroll_y
        await wait_for(pilot, lambda: transcript.max_scroll_y > grown + 2, what="more output")
        assert transcript.scroll_y >= transcript.max_scroll_y - 3  # following again
        await pilot.press("escape")
        await finished(pilot, 1)
