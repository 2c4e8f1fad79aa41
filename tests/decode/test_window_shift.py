"""The `shift` window policy: when the window fills, its last half is kept and decoding goes on with the
cache, against the tests' reference applying the same rule, alone and batched. `book` stays the default."""
import pytest
import torch

from tfchat.core.decode.batching import BatchRun, Row
from tfchat.core.decode.generation import generate_ids
from tfchat.core.errors import PresetError
from tfchat.core.settings.sampling_params import SamplingParams
from support.engine_pair import engine_and_reference
from support.reference import ReferenceModel, assert_same_greedy_tokens

SHAPE = (36, 4, 3, 12, 1500)  # a window of 12: it fills and shifts several times in 40 tokens


def shift_greedy(reference: ReferenceModel, prompt: list[int], n: int):
    """Greedy tokens under the shift rule, written out: the window starts at the book's crop; when the
    text outgrows it, it restarts at the last C // 2 tokens, and grows again from there."""
    C = reference.C
    ids, gaps = list(prompt), []
    start = max(0, len(ids) - C)
    for _ in range(n):
        if len(ids) - start > C:
            start = len(ids) - C // 2
        logits = reference.logits(ids[start:])[-1]
        top2 = torch.topk(logits, 2).values
        gaps.append(float(top2[0] - top2[1]))
        ids.append(int(logits.argmax()))
    return ids[len(prompt):], gaps


@pytest.fixture
def pair(tmp_path):
    return engine_and_reference(tmp_path, SHAPE, seed=5)


@pytest.mark.parametrize("prompt_length", [3, 12, 20])  # inside the window, exactly full, past it
def test_shift_is_the_reference_rule_token_for_token(pair, prompt_length):
    model, reference = pair
    prompt = [int(t) for t in torch.randint(0, SHAPE[4], (prompt_length,), generator=torch.Generator().manual_seed(1))]
    expected, gaps = shift_greedy(reference, prompt, 40)
    got = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=40, window="shift")))
    assert_same_greedy_tokens(expected, got, gaps)
    book = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=40)))
    assert book != got  # past the window the two policies see different windows


def test_batched_shift_rows_equal_single_runs_beside_book_rows(pair):
    model, _ = pair
    prompt = [5, 9, 14]
    shift = SamplingParams(temperature=0, max_new_tokens=30, window="shift")
    book = SamplingParams(temperature=0, max_new_tokens=30)
    run = BatchRun(model, [Row(prompt, shift), Row(prompt, book), Row(prompt + [7] * 15, shift)])
    for _ in run:
        pass
    for index, (ids, params) in enumerate([(prompt, shift), (prompt, book), (prompt + [7] * 15, shift)]):
        assert run.rows[index].tokens[len(ids):] == list(generate_ids(model, ids, params)), index


def test_book_is_the_default_and_other_policies_are_refused():
    assert SamplingParams().window == "book"
    with pytest.raises(PresetError, match="window must be 'book' or 'shift'"):
        SamplingParams(window="slide")


def test_generate_says_the_window_policy_in_its_stats(small_model):
    import json

    from tfchat.core.engine.in_process import Engine
    from support.cli import tfchat

    run = tfchat("generate", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "50",
                 "--window", "shift", "--stats", "The customer wants")
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stderr.strip().splitlines()[-1])
    assert stats["window"] == "shift" and stats["new_tokens"] == 50
    engine = Engine.load(small_model, "cpu")
    expected = "".join(engine.generate("The customer wants", SamplingParams(temperature=0, max_new_tokens=50,
                                                                             window="shift")))
    assert run.stdout == expected + "\n"  # generate ends its text with a line break
    book = tfchat("generate", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "5", "--stats", "Hi")
    assert json.loads(book.stderr.strip().splitlines()[-1])["window"] == "book"
    wrong = tfchat("generate", "--model", str(small_model), "--window", "slide", "Hi")
    assert wrong.returncode == 2 and "shift" in wrong.stderr


async def test_the_app_says_the_policy_in_the_status_line_the_stats_line_and_the_history(app_factory):
    import json
    import sqlite3

    from support.pilot import finished, notices, ready, send, views
    from tfchat.tui.widgets.status_line import StatusLine

    app = app_factory(preset="greedy")
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(pilot)
        assert "window" not in str(app.query_one(StatusLine).render())
        await send(pilot, "/set window shift")
        await send(pilot, "/set max_new_tokens 40")  # past the small model's window of 32
        assert "window: shift" in str(app.query_one(StatusLine).render())
        await send(pilot, "The customer wants")
        await finished(pilot, 1)
        assert "window shift" in views(app)[0].summary_shown
        await send(pilot, "/set window slide")
        assert "'book' or 'shift'" in notices(app)[-1]
    with sqlite3.connect(app_factory.history) as db:
        [(stats, params)] = db.execute("SELECT stats, params FROM exchanges").fetchall()
    assert json.loads(stats)["window"] == "shift" and json.loads(params)["window"] == "shift"
