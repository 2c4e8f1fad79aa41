"""Conversations: every session's exchanges kept together, reopened with /resume, `tfchat --resume` or f2."""
import sqlite3

from support.pilot import finished, notices, ready, send, views, wait_for
from tfchat.core.engine.tokenizer import load_encoding
from tfchat.tui.screens.history_screen import HistoryScreen


def conversations_of(history) -> list:
    with sqlite3.connect(history) as db:
        return [row[0] for row in db.execute("SELECT conversation FROM exchanges ORDER BY id")]


async def a_session(app_factory, prompts, then_continue=False):
    """A session of the app that sends `prompts` (3 greedy tokens each) and quits; the texts shown."""
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 3")
        for number, prompt in enumerate(prompts, start=1):
            await send(pilot, prompt)
            await finished(pilot, number)
        if then_continue:
            before = views(app)[-1].output
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: views(app)[-1].output != before and app.chat.session.active is None,
                           what="the continue")
        return [view.shown_text for view in views(app)], app.chat.session.transcript()


async def test_resume_brings_back_the_last_conversation_and_continue_mode_goes_on_from_it(app_factory):
    shown, context = await a_session(app_factory, ["First prompt", "Second prompt"], then_continue=True)
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/resume")
        assert [view.shown_text for view in views(app)] == shown  # the continue went on in its exchange
        assert notices(app)[-1] == "Reopened “First prompt” (3 exchanges); ctrl+t: continue mode, to go on from its text."
        assert app.chat.session.transcript() == context
        await pilot.press("ctrl+t")
        await send(pilot, "/set max_new_tokens 2")
        await send(pilot, " Third")
        await finished(pilot, 3)
        third = views(app)[-1]
        assert third.stats["prompt_tokens"] == len(load_encoding().encode(context + " Third"))
        assert app.chat.session.transcript().startswith(context + " Third")
    first, *rest = conversations_of(app_factory.history)
    assert first is not None and rest == [first] * 3  # the new exchange went on in the same conversation


async def test_tfchat_resume_opens_on_the_last_conversation_and_ctrl_r_sends_its_last_prompt(app_factory):
    shown, _ = await a_session(app_factory, ["Only prompt"])
    app = app_factory(preset="greedy", resume=True)
    async with app.run_test() as pilot:
        await ready(pilot)
        assert [view.shown_text for view in views(app)] == shown
        await pilot.press("ctrl+r")
        await finished(pilot, 2)
        assert views(app)[-1].prompt == "Only prompt"


async def test_the_history_browser_shows_a_conversations_title_and_reopens_it(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 2")
        await send(pilot, "Alpha talk")
        await send(pilot, "Alpha again")
        await finished(pilot, 2)
        await send(pilot, "/clear")  # what follows is another conversation
        await send(pilot, "Beta talk")
        await finished(pilot, 1)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await pilot.press(*"again")
        await wait_for(pilot, lambda: len(screen.found) == 1, what="the search")
        preview = str(screen.query_one("#preview").render())
        assert "“Alpha talk” · 2 exchanges · ctrl+r reopens it" in preview
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen), what="the browser to close")
        assert [view.prompt for view in views(app)] == ["Alpha talk", "Alpha again"]  # Beta's is gone
    alpha_id, _, beta_id = conversations_of(app_factory.history)
    assert alpha_id != beta_id


async def test_resume_with_no_earlier_conversation_says_so(app_factory):
    app = app_factory()
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/resume")
        assert notices(app)[-1] == "/resume: no earlier conversation in the history to resume"
