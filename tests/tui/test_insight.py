"""Seeing inside a generation in the real app: the probability view, the token cursor, branches, the lens,
the model inspector. Driven by Pilot on a real checkpoint and tokenizer."""
import io
import math

import pytest
from rich.console import Console
from rich.text import Text

from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.sampling_params import SamplingParams
from support.pilot import finished, history_rows, ready, send, views, wait_for
from tfchat.tui.widgets.notice_row import NoticeRow

from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.screens.token_screen import TokenScreen
from tfchat.tui.widgets.token_view import CURSOR_STYLE, band_style


def plain(widget, width: int = 120) -> str:
    """A Static's content as plain text, rendered as a terminal would."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def styled_output(view) -> Text:
    """The styled text the exchange's text widget shows while the probability view is on, else None."""
    return view.styled_text


async def test_probability_view_colours_each_token_and_shows_a_legend(app_factory):
    app = app_factory(preset="balanced")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "The cat")
        await finished(pilot, 1)
        view = views(app)[0]
        steps = view.branch.steps
        assert len(steps) == 200 and all(len(s.top) == 10 for s in steps)
        assert not app.query_one("#legend").display
        await pilot.press("f3")
        assert app.query_one("#legend").display and "token probability" in plain(app.query_one("#legend"))
        shown = styled_output(view)
        assert shown.plain == (view.prompt + view.output).replace("\r", "")  # rich drops carriage returns
        # Every token's text carries its probability's colour, in order.
        spans = view.branch.spans(app.chat.inside.bytes_of)
        coloured = [(shown.plain[span.start:span.end], str(span.style)) for span in shown.spans
                    if span.start >= len(view.prompt)]
        expected = [(view.output[start:end].replace("\r", ""), band_style(math.exp(step.logprob)))
                    for step, (start, end) in zip(steps, spans) if end > start]
        assert coloured == [piece for piece in expected if piece[0]]
        await pilot.press("f3")
        assert not app.query_one("#legend").display and styled_output(view) is None


async def test_token_cursor_panel_branch_and_history(app_factory):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "The cat")
        await finished(pilot, 1)
        view = views(app)[0]
        first_output = view.output
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, TokenScreen) and screen.cursor == len(view.branch.steps) - 1
        await pilot.press("home", "right", "right")
        assert screen.cursor == 2
        step = view.branch.steps[2]
        panel = plain(app.screen.query_one("#candidates"))
        # Greedy: the chosen token is the top candidate with the sampler's whole mass.
        assert "▶✓" in panel.replace(" ", "") or "▶✓" in panel
        assert "100.0%" in panel and f"{math.exp(step.top[0].logprob) * 100:5.1f}%" in panel
        text = screen.query_one("#text").content
        assert any(str(span.style) == CURSOR_STYLE for span in text.spans)
        # The logit lens for this step: its last row is the model's own prediction.
        await pilot.press("l")
        await wait_for(pilot, lambda: screen.lens_rows(0, 2) is not None, what="the logit lens")
        lens = screen.lens_rows(0, 2)
        assert len(lens) == 2 and lens[-1][0][0] == step.top[0].id
        assert lens[-1][0][1] == pytest.approx(math.exp(step.top[0].logprob), abs=1e-4)
        lens_text = plain(screen.query_one("#lens"))
        assert "guess here" in lens_text and "\noutput " in lens_text
        # Branch: the second candidate at step 3 instead of the first.
        await pilot.press("down", "enter")
        await finished(pilot, 1)
        assert len(view.branches) == 2 and view.branch_index == 1
        branch = view.branch
        assert branch.steps[2].id == step.top[1].id and branch.token_ids(2) == view.branches[0].token_ids(2)
        assert len(branch.steps) == 3 + 200 and view.output != first_output
        assert "branch 2/2" in view.summary_shown
        assert "200 new tokens, 203 in all" in view.summary_shown  # as the cursor counts them: 203 steps
        # The branch is in the history, whole, and continue mode would go on from it.
        rows = history_rows(app_factory.history)
        assert [r[0] for r in rows] == ["prompt", "branch"] and rows[1][2] == view.output
        assert app.chat.session.context_log[-1][1] == view.output
        # alt+left / alt+right move between the branches.
        await pilot.press("alt+left")
        assert view.branch_index == 0 and view.output == first_output and app.chat.session.context_log[-1][1] == first_output
        await pilot.press("alt+right")
        assert view.branch_index == 1


async def test_the_branch_generation_is_the_engines_with_that_token_forced(app_factory, small_model):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "Sales grew")
        await finished(pilot, 1)
        view = views(app)[0]
        await pilot.press("f5", "home", "down", "enter")
        await finished(pilot, 1)
        forced = view.branches[0].steps[0].top[1].id
    engine = Engine.load(small_model, "cpu")
    expected = "".join(engine.generate("Sales grew", SamplingParams(temperature=0, max_new_tokens=200),
                                       forced_ids=(forced,)))
    assert view.output == expected


async def test_model_inspector_lists_every_tensor(app_factory):
    app = app_factory(engine_process=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f8")
        assert isinstance(app.screen, InspectorScreen)
        card = app.screen.card
        summary = plain(app.screen.query_one("#summary"), 300)
        assert f"{card['parameter_count']:,}" in summary and "d_model=32" in summary and "no generation yet" in summary
        tensors = plain(app.screen.query_one("#tensors"))
        assert "transformer_blocks.1.mha.heads.3.Wv.weight" in tensors and "[100256, 32]" in tensors
        assert len(card["tensors"]) == 2 * (4 + 4 * 4 + 2 + 4) + 1 + 2 + 2  # the book's layout: 4 heads, 2 blocks
        await pilot.press("escape")
        assert not isinstance(app.screen, InspectorScreen)


async def test_insight_keys_explain_themselves_without_tokens(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("f5")
        assert not isinstance(app.screen, TokenScreen)
        await pilot.press("alt+left")
        await wait_for(pilot, lambda: "No generated tokens" in app.query_one(NoticeRow).message,
                       what="the notice that says why")


async def test_old_exchanges_drop_their_token_records_so_memory_stays_bounded(app_factory, monkeypatch):
    monkeypatch.setattr("tfchat.tui.chat.request_runner.TRACED_EXCHANGES", 2)
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        app.chat.run_slash_text("/set max_new_tokens 4")
        await pilot.press("f3")
        for number, prompt in enumerate(["One", "Two", "Three"], start=1):
            await send(pilot, prompt)
            await finished(pilot, number)
        first, second, third = views(app)
        assert first.branch.steps == [] and styled_output(first) is None and first.output  # the text stays
        assert len(second.branch.steps) == len(third.branch.steps) == 4 and styled_output(third) is not None


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 45)])
async def test_the_logit_lens_fits_its_panel_and_scrolls_into_reach_at_every_size(app_factory, make_checkpoint, size):
    deep = make_checkpoint(d_model=32, num_heads=4, num_blocks=6, context_length=32, vocab_size=100256, seed=3)
    app = app_factory(preset="greedy", model=deep)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await send(pilot, "The essential")
        await finished(pilot, 1)
        await pilot.press("f5")
        screen = app.screen
        await pilot.press("l")
        await wait_for(pilot, lambda: screen.lens_rows(0, screen.cursor) is not None, what="the logit lens")
        await pilot.pause(0.1)
        lens, panel = screen.query_one("#lens"), screen.query_one("#panel")
        lines = plain(lens, 200).rstrip("\n").splitlines()
        guesses, spread = lines[:2 + 6], lines[2 + 6:]
        assert guesses[-1].strip().startswith("output")  # a row a block, the last the output
        assert "entropy" in spread[0] and len(spread) == 1 + 6 and spread[-1].strip().startswith("output")
        widest = max(len(line.rstrip()) for line in lines)
        assert widest <= panel.content_region.width, (widest, panel.content_region.width)  # nothing is cut
        for line in guesses[2:]:
            assert line.count("'") % 2 == 0  # every token keeps both of its quotes
        for _ in range(4):
            await pilot.press("pagedown")
        assert panel.scroll_y == panel.max_scroll_y  # the output row is within reach
        region = lens.region
        assert region.y + region.height <= panel.region.y + panel.region.height  # and on screen
