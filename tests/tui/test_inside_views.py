"""The deeper inside views in the real app, on a real checkpoint: attention at a step (the model view,
a head's matrix, heads switched off), the lens's entropy and KL, a scored text, the positional table."""
import io

from rich.console import Console

from support.pilot import finished, notices, ready, send, views, wait_for
from tfchat.tui.screens.attention_screen import AttentionScreen, HeadScreen
from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.transcript.score_view import ScoreView
from tfchat.tui.screens.token_screen import TokenScreen


def plain(widget, width: int = 160) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def _greedy_exchange(pilot, prompt="The customer wants", tokens=40):
    await ready(pilot)
    await send(pilot, "/preset greedy")
    await send(pilot, f"/set max_new_tokens {tokens}")
    await send(pilot, prompt)
    await finished(pilot, 1)
    return views(pilot.app)[-1]


async def test_attention_at_a_step_is_the_engines_with_every_head_and_heads_switch_off(app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 50)) as pilot:
        view = await _greedy_exchange(pilot)  # 40 tokens after the prompt: past the window of 32
        engine = app.chat.engine
        await pilot.press("f5", "home", "right", "right", "right")
        cursor = app.screen.cursor
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        await wait_for(pilot, lambda: screen.maps is not None, what="the attention maps")
        forced = tuple(view.branch.token_ids(cursor))
        expected = engine.attention(view.base_context, forced)
        assert screen.maps == expected and screen.step.chosen == view.branch.steps[cursor].id
        grid = plain(screen.query_one("#grid"))
        rows = [line for line in grid.splitlines() if line.startswith(" L") or line.startswith("L")]
        assert [r.split()[0] + r.split()[1] for r in rows[:3]] == ["L0H0", "L0H1", "L0H2"]
        assert len(rows) == 2 * 4  # two layers of four heads, every one on screen at 50 rows
        # The selected head and token: its weight, as the maps say.
        await pilot.press("down", "left")
        weight = expected.last_row(0, 1)[expected.size - 2]
        assert f"L0 H1 → token {expected.size - 1} of {expected.size}" in plain(screen.query_one("#detail"))
        assert f"weight {weight:.3f}" in plain(screen.query_one("#detail"))
        # Switch it off: the next token's candidates and the chosen token's change, as the engine says.
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.ablated is not None, what="the ablation")
        ablated = engine.next_token(view.base_context, forced, ((0, 1),), screen.step.chosen)
        assert screen.ablated == ablated and screen.off == {(0, 1)}
        detail = plain(screen.query_one("#detail"))
        change = ablated.chosen_logprob - screen.baseline.chosen_logprob
        assert "L0.H1 off" in detail and f"{change:+.3f}" in detail and "heads off" in detail
        assert "L0 H1✗" in plain(screen.query_one("#grid"))
        await pilot.press("x")  # on again
        assert screen.off == frozenset() and "heads off" not in plain(screen.query_one("#detail"))
        # The head's whole matrix: weights (masked above the diagonal), then the scores before the mask.
        await pilot.press("enter")
        head = app.screen
        assert isinstance(head, HeadScreen) and (head.layer_index, head.head_index) == (0, 1)
        q = head.row
        assert f"weight {expected.weight_rows(0, 1)[q][q]:.3f}" in plain(head.query_one("#detail"))
        await pilot.press("s", "left")
        assert head.showing_scores and "before the mask" in plain(head.query_one("#title"))
        assert f"score {expected.score_rows(0, 1)[q][q - 1]:.3f}" in plain(head.query_one("#detail"))
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, TokenScreen)


async def test_the_lens_shows_each_blocks_entropy_and_kl_from_the_output(app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 50)) as pilot:
        view = await _greedy_exchange(pilot, tokens=6)
        await pilot.press("f5", "l")
        screen = app.screen
        key = (0, screen.cursor)
        await wait_for(pilot, lambda: screen.lens_rows(*key) is not None, what="the lens")
        spread = app.chat.engine.lens_spread(view.base_context, tuple(view.branch.token_ids(screen.cursor)))
        lens = plain(screen.query_one("#lens"))
        assert "entropy, nats" in lens and "KL from the output" in lens
        assert f"{spread[0][0]:6.2f}" in lens and f"{spread[0][1]:6.2f}" in lens
        assert spread[-1][1] == 0.0 and lens.rstrip().endswith("0.00")  # the output is its own prediction


async def test_f9_scores_the_prompt_box_text_and_the_token_cursor_walks_it(app_factory):
    app = app_factory()
    text = "The customer wants value and the sales team listens to every word before the deal is closed. " * 2
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f9")  # an empty box: nothing to score, said in the notice row
        row = app.query_one(NoticeRow)
        assert row.display and row.message.startswith("nothing to score")
        app.query_one(PromptInput).load_text(text)
        await pilot.press("f9")
        assert not row.display  # the complaint is stale once a score runs
        await wait_for(pilot, lambda: any(isinstance(v, ScoreView) and v.branch.steps for v in views(app)),
                       what="the scored text")
        view = views(app)[-1]
        expected = app.chat.engine.score(text)
        assert [s.id for s in view.branch.steps] == [t.id for t in expected.tokens]
        assert f"loss {expected.loss:.3f} nats" in view.summary_shown
        assert f"perplexity {expected.perplexity:.4g}" in view.summary_shown
        assert view.prompt + view.output == text and view.styled_text is not None  # coloured by surprise
        assert "most surprising:" in view.note_shown
        assert app.query_one(PromptInput).text == text  # left there, to edit and score again
        await pilot.press("f5")
        assert isinstance(app.screen, TokenScreen) and len(app.screen.steps) == len(expected.tokens)
        await pilot.press("escape")
        # ctrl+g continues the last generated exchange, never a scored text.
        assert app.chat.transcript.last_generated() is None


async def test_slash_score_a_file_with_heads_off_says_the_change_in_loss(app_factory, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Listen first, then ask the customer what matters most to them.", encoding="utf-8")
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, f"/score --ablate 0.1,1.3 {path}")
        await wait_for(pilot, lambda: views(app) and views(app)[-1].branch.steps, what="the scored file")
        engine, text = app.chat.engine, path.read_text()
        before, after = engine.score(text), engine.score(text, ((0, 1), (1, 3)))
        summary = views(app)[-1].summary_shown
        assert f"loss {before.loss:.3f} → {after.loss:.3f} nats ({after.loss - before.loss:+.3f})" in summary
        assert "L0.H1, L1.H3 off" in summary
        await send(pilot, "/score /nonexistent/file.txt")
        await wait_for(pilot, lambda: any("cannot read it" in n for n in notices(app)), what="the bad path")
        await send(pilot, "/score --ablate 9.9 " + str(path))  # the model says which heads it has
        await wait_for(pilot, lambda: "layers 0-1 and heads 0-3" in views(app)[-1].summary_shown,
                       what="the missing head")


async def test_the_inspector_shows_the_positional_encoding_table(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("f8", "p")
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        table = plain(screen.query_one("#positions"), width=100)
        lines = table.splitlines()
        assert "positional encoding: positions down, dimensions 0-31 of 32 across" in lines[0]
        assert [line.split()[0] for line in lines[2:]] == [str(p) for p in range(32)]  # the window: 32
