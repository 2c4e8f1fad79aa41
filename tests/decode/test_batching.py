"""Batched generation: every row is the generation it would be alone, decoded together."""
import threading

import pytest
import torch

from tfchat.core.decode.batching import BatchRun, Row
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.decode.generation import generate_ids
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.helper_thread import HelperThread
from support.reference import ReferenceModel, random_book_checkpoint
from support.reference import TIE_TOLERANCE
from support.reference import reference_probs

SHAPE = (36, 4, 3, 12, 1500)  # a window of 12: rows slide past it early


def _model(tmp_path, shape=SHAPE, seed=1, helper=None):
    ckpt = random_book_checkpoint(*shape, seed=seed)
    torch.save(ckpt, tmp_path / "m.ckpt")
    loaded = load_checkpoint(tmp_path / "m.ckpt")
    return FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper), ReferenceModel(ckpt)


def _run(model, rows, on_step=None):
    got = {i: [] for i in range(len(rows))}
    run = BatchRun(model, rows)
    for step, tokens in enumerate(run):
        for token in tokens:
            got[token.row].append(token.id)
        if on_step:
            on_step(step, run)
    return got


@pytest.mark.parametrize("threads", ["one thread", "helper thread"])
def test_greedy_rows_equal_single_greedy_runs_past_the_window_and_finishing_apart(tmp_path, threads):
    helper = HelperThread() if threads == "helper thread" else None
    model, ref = _model(tmp_path, helper=helper)
    prompts = [[1, 2, 3], [5] * 15, [7, 8], [9, 10, 11, 12]]  # the second starts past the window
    lengths = [40, 10, 25, 3]
    rows = [Row(p, SamplingParams(temperature=0, max_new_tokens=n)) for p, n in zip(prompts, lengths)]
    got = _run(model, rows)
    for i, (prompt, n) in enumerate(zip(prompts, lengths)):
        single = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=n)))
        assert len(got[i]) == n and rows[i].finish_reason == "length"
        if got[i] != single:  # allowed only at a near tie of the book's model
            expected, gaps = ref.greedy(prompt, n)
            first = next(k for k, (a, b) in enumerate(zip(got[i], expected)) if a != b)
            assert gaps[first] < TIE_TOLERANCE
    if helper:
        helper.close()


def test_batched_logits_match_the_book_at_each_rows_own_position(tmp_path):
    model, ref = _model(tmp_path)
    C = SHAPE[3]
    texts = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7], [2, 7], [1, 8, 2, 8, 1, 8, 2, 8]]
    rows = [Row(t[:2], SamplingParams(temperature=0, max_new_tokens=1)) for t in texts]
    run = BatchRun(model, rows)
    cache = model.new_cache(len(rows))
    for slot, text in enumerate(texts):  # each row's cache filled to its own length
        model.last_logits(torch.tensor(text[-C:][:-1]), cache.row(slot))
    lengths = [min(len(t), C) for t in texts]
    logits = model.decode_rows(torch.tensor([t[-1] for t in texts]), torch.tensor([n - 1 for n in lengths]), cache)
    for slot, text in enumerate(texts):
        torch.testing.assert_close(logits[slot], ref.next_logits(text), atol=1e-4, rtol=0)
    assert run.rows[0].tokens == texts[0][:2]  # nothing ran: a batch starts when iterated


def test_a_cancelled_row_stops_and_the_others_are_undisturbed(tmp_path):
    model, _ = _model(tmp_path)
    cancel = threading.Event()
    params = SamplingParams(temperature=0.8, top_k=40, max_new_tokens=30)
    rows = [Row([4, 5, 6], params, torch.Generator().manual_seed(i), cancel if i == 1 else None) for i in range(3)]
    got = _run(model, rows, on_step=lambda step, run: cancel.set() if step == 4 else None)
    assert len(got[1]) == 5 and rows[1].finish_reason == "stopped"
    for i in (0, 2):
        single = list(generate_ids(model, [4, 5, 6], params, torch.Generator().manual_seed(i)))
        assert got[i] == single and rows[i].finish_reason == "length"


def test_a_row_the_caller_finishes_leaves_the_batch(tmp_path):
    model, _ = _model(tmp_path)
    rows = [Row([i + 1], SamplingParams(temperature=0, max_new_tokens=20)) for i in range(3)]
    got = _run(model, rows, on_step=lambda step, run: run.finish(0, "stop") if step == 2 else None)
    assert len(got[0]) == 3 and rows[0].finish_reason == "stop"
    assert len(got[1]) == len(got[2]) == 20


def test_sampled_rows_draw_from_the_books_distribution_in_the_prefill_and_the_batched_step(tmp_path):
    model, ref = _model(tmp_path, shape=(16, 2, 2, 8, 6), seed=3)
    prompt, params = [1, 2, 3], SamplingParams(temperature=1.0, max_new_tokens=2)
    first, second = torch.zeros(6, dtype=torch.float64), {}
    for batch in range(250):
        rows = [Row(prompt, params, torch.Generator().manual_seed(8 * batch + i)) for i in range(8)]
        for tokens in _run(model, rows).values():
            first[tokens[0]] += 1
            second.setdefault(tokens[0], torch.zeros(6, dtype=torch.float64))[tokens[1]] += 1
    expected = reference_probs(ref.next_logits(prompt))
    assert 0.5 * (first / first.sum() - expected).abs().sum().item() < 0.05
    common = max(second, key=lambda t: second[t].sum())  # the second token, after the likeliest first one
    counts = second[common]
    expected = reference_probs(ref.next_logits(prompt + [common]))
    assert counts.sum() > 500
    assert 0.5 * (counts / counts.sum() - expected).abs().sum().item() < 0.07


def test_a_batch_refuses_more_rows_than_it_holds(tmp_path):
    model, _ = _model(tmp_path)
    with pytest.raises(ValueError, match="1 to 8 rows"):
        BatchRun(model, [Row([1], SamplingParams()) for _ in range(9)])


def test_a_row_that_joins_between_steps_is_its_single_run_and_the_others_go_on(tmp_path):
    model, _ = _model(tmp_path)
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    run = BatchRun(model, [Row([1, 2, 3], greedy)])
    got = {0: [], 1: []}
    for step in range(30):
        if step == 5:
            assert run.add(Row([9] * 14, greedy)) == 1  # past the window from its first step
        for token in run.step():
            got[token.row].append(token.id)
    assert run.step() == [] and run.room() == 8
    for i, prompt in enumerate(([1, 2, 3], [9] * 14)):
        assert got[i] == list(generate_ids(model, prompt, greedy))


def test_a_long_run_forgets_the_rows_it_has_served(tmp_path):
    """A server's batch runs for as long as any request does: rows that ended and were released must not
    pile up (each holds its whole prompt), and the rows still going must not be disturbed by it."""
    model, _ = _model(tmp_path)
    greedy = SamplingParams(temperature=0, max_new_tokens=3)
    long_row = Row([5, 6, 7], SamplingParams(temperature=0, max_new_tokens=60))
    run = BatchRun(model, [long_row], max_rows=3)
    long_tokens, short_tokens, short_index, sizes = [], {}, {}, []
    for step in range(60):
        if step % 3 == 0 and run.room():
            prompt = [100 + step, 200 + step] * 500  # a long prompt, as a server's requests may have
            short_index[run.add(Row(prompt, greedy))] = prompt
        for token in run.step():
            (long_tokens if token.row == 0 else short_tokens.setdefault(token.row, [])).append(token.id)
        for index in [i for i in short_index if i in run.rows and run.ended(i)]:
            run.release(index)
        sizes.append(len(run.rows))
    assert len(short_tokens) >= 15 and max(sizes) <= 3
    assert long_tokens == list(generate_ids(model, [5, 6, 7], SamplingParams(temperature=0, max_new_tokens=60)))
    for index, tokens in short_tokens.items():
        assert tokens == list(generate_ids(model, short_index[index], greedy)), index


def test_every_row_ends_with_an_event_carrying_its_stats_whenever_a_cancel_lands(make_checkpoint):
    """The compare view finishes a column on its row's last event. A cancel set after a row's token of a
    step but before the others' used to end that row silently, its column left without a finish reason."""
    from tfchat.core.engine.in_process import Engine

    engine = Engine.load(make_checkpoint(vocab_size=100256), "cpu")
    params = [SamplingParams(temperature=1.0, max_new_tokens=1000, seed=s) for s in (1, 2, 3)]
    for cancel_after in range(1, 8):  # land the cancel after each position within a step
        cancel = threading.Event()
        batch = engine.generate_batch(["Once"] * 3, params, cancel)
        last, seen = {}, 0
        for event in batch:
            seen += 1
            if seen == cancel_after:
                cancel.set()
            if event.stats is not None:
                assert event.row not in last, "a row ended twice"
                last[event.row] = event.stats
        assert sorted(last) == [0, 1, 2], f"cancel after event {cancel_after}: rows {sorted(last)} ended with stats"
        assert [last[i].finish_reason for i in range(3)] == ["stopped"] * 3
        assert [batch.stats[i] for i in range(3)] == [last[i] for i in range(3)]
