"""The overlap view (f12) and the token cursor's corpus line, on the real app with a real corpus file."""
from support.pilot import finished, notices, ready, send, views, wait_for
from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.presets import load_presets
from tfchat.tui.screens.overlap_screen import OverlapScreen
from tfchat.tui.screens.token_screen import TokenScreen
from tfchat.tui.widgets.notice_row import NoticeRow

PROMPT = "The sales team"


def greedy_output(model, tokens=24) -> str:
    engine = Engine.load(model, "cpu")
    try:
        params = load_presets().get("greedy").params.with_changes(max_new_tokens=tokens)
        return "".join(engine.generate(PROMPT, params))
    finally:
        engine.close()


def corpus_holding(tmp_path, text: str):
    """A corpus whose line 3 holds `text` (and the prompt before it, as a training text would)."""
    path = tmp_path / "corpus.txt"
    path.write_text(f"First line of the text.\nAnother line here.\n{PROMPT}{text}\nThe end of it.\n", encoding="utf-8")
    return path


def shown(screen, selector) -> str:
    return str(screen.query_one(selector).render())


async def test_f12_marks_what_the_output_copied_with_its_line_and_count(app_factory, small_model, tmp_path):
    output = greedy_output(small_model)
    app = app_factory(preset="greedy", corpus=str(corpus_holding(tmp_path, output)))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.chat.corpus.ready(), what="the corpus indexed")
        assert any(notice.startswith("Corpus: corpus.txt: ") for notice in notices(app))
        await send(pilot, "/set max_new_tokens 24")
        await send(pilot, PROMPT)
        await finished(pilot, 1)
        assert views(app)[0].output == output
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, OverlapScreen)
        ids = app.chat.engine.encoding.encode(output)
        [span] = screen.found.spans
        assert (span.start, span.end, span.occurrences, span.line) == (0, len(ids), 1, 3)
        assert shown(screen, "#summary") == f"100% of {len(ids)} tokens in 1 copied span (8+ tokens), longest {len(ids)}"
        assert f"occurs 1 time in the corpus · first at line 3" in shown(screen, "#detail")
        await pilot.press("escape")
        await pilot.press("f5")  # the token cursor: the training text's continuation beside the model's
        cursor = app.screen
        assert isinstance(cursor, TokenScreen)
        await pilot.press("home")
        corpus_line = shown(cursor, "#corpus")
        assert corpus_line.startswith("training text, after the context's last") and "×1" in corpus_line


async def test_the_overlap_view_follows_the_text_while_it_streams(app_factory, tmp_path):
    app = app_factory(preset="balanced", corpus=str(corpus_holding(tmp_path, " and more words")))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.chat.corpus.ready(), what="the corpus indexed")
        await send(pilot, "/set max_new_tokens 0")  # until stopped
        await send(pilot, "Once")
        await wait_for(pilot, lambda: views(app) and views(app)[0].output, what="some output")
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, OverlapScreen)
        first = screen.found.tokens
        await wait_for(pilot, lambda: screen.found.tokens > first + 20, what="the view following the stream")
        await pilot.press("escape", "escape")
        await finished(pilot, 1)


async def test_without_a_corpus_f12_says_how_to_give_one_and_a_bad_corpus_is_one_line(app_factory, tmp_path):
    app = app_factory(preset="greedy")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 3")
        await send(pilot, PROMPT)
        await finished(pilot, 1)
        await pilot.press("f12")
        row = app.query_one(NoticeRow)
        assert "no training text is known for this model" in row.message and "/corpus PATH" in row.message
        await send(pilot, f"/corpus {tmp_path}")
        assert notices(app)[-1] == f"/corpus: {tmp_path}: is a directory; the corpus is the UTF-8 text file the model " \
                                   "was trained on"
        (tmp_path / "b.txt").write_bytes(b"\x00\x01")
        await send(pilot, f"/corpus {tmp_path / 'b.txt'}")
        await wait_for(pilot, lambda: "looks binary" in notices(app)[-1], what="the binary corpus refused")
        assert app.is_running and not app.chat.corpus.ready()


async def test_a_comparison_is_held_against_the_corpus_column_by_column(app_factory, small_model, tmp_path):
    from support.pilot import compared

    output = greedy_output(small_model, tokens=12)
    app = app_factory(preset="greedy", corpus=str(corpus_holding(tmp_path, output)))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.chat.corpus.ready(), what="the corpus indexed")
        await send(pilot, "/set max_new_tokens 12")
        await send(pilot, "/compare greedy balanced")
        await send(pilot, PROMPT)
        await compared(pilot)
        await pilot.press("f12")
        screen = app.screen
        assert isinstance(screen, OverlapScreen)
        assert shown(screen, "#title").endswith("greedy (1 of 2, tab: next)")
        assert screen.found.copied_fraction == 1.0  # greedy's column is the corpus's line 3
        await pilot.press("tab")
        assert shown(screen, "#title").endswith("balanced (2 of 2, tab: next)")
        balanced = app.chat.transcript.saved_views()[-1].columns[1].output
        assert screen.found.tokens == len(app.chat.engine.encoding.encode(balanced))


async def test_the_app_drafts_from_its_corpus_and_the_token_cursor_says_which_tokens_were_drafted(
        app_factory, small_model, tmp_path):
    output = greedy_output(small_model)
    app = app_factory(preset="greedy", corpus=str(corpus_holding(tmp_path, output)))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.chat.corpus.ready(), what="the corpus indexed")
        await send(pilot, "/set max_new_tokens 24")
        await send(pilot, PROMPT)
        await finished(pilot, 1)
        view = views(app)[0]
        assert view.output == output  # drafting changes the speed, never the text
        assert "drafts " in view.summary_shown and " taken" in view.summary_shown
        drafted = [i for i, step in enumerate(view.branch.steps) if step.drafted]
        assert drafted and len(drafted) < len(view.branch.steps)
        await pilot.press("f5")
        cursor = app.screen
        assert isinstance(cursor, TokenScreen)
        cursor.action_move_to(drafted[0])
        await pilot.pause()
        assert "drafted, verified" in shown(cursor, "#step")
        cursor.action_move_to(0)  # the first token comes from the prompt's own pass: never a draft
        await pilot.pause()
        assert "drafted" not in shown(cursor, "#step")
