"""The engine in its own process behaves like the in-process one."""
import threading

import pytest

from tfchat.core.engine.in_process import Engine
from tfchat.core.engine.engine_process import EngineProcess
from tfchat.core.errors import CheckpointError, TfchatError
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.engine.tokenizer import token_text


@pytest.fixture
def remote(small_model):
    engine = EngineProcess.load(small_model, "cpu")
    yield engine
    engine.close()


def test_same_text_and_stats_as_in_process(remote, small_model):
    params = SamplingParams(temperature=0.8, top_k=40, max_new_tokens=30, seed=11)
    local = Engine.load(small_model, "cpu").generate("Deals close when", params)
    expected = "".join(local)
    generation = remote.generate("Deals close when", params)
    assert "".join(generation) == expected
    assert generation.stats.new_tokens == 30 and generation.stats.seed == 11
    assert remote.parameter_count > 0 and remote.device == "cpu"


def test_a_stop_from_another_thread_reaches_the_child(remote):
    cancel = threading.Event()
    generation = remote.generate("Long", SamplingParams(max_new_tokens=100000, seed=1), cancel)
    pieces = 0
    for _ in generation:
        pieces += 1
        if pieces == 5:
            cancel.set()
    assert generation.stats.finish_reason == "stopped" and generation.stats.new_tokens < 1000
    # The engine is ready for the next request, with the stop cleared.
    again = remote.generate("Next", SamplingParams(max_new_tokens=5, seed=1))
    list(again)
    assert again.stats.finish_reason == "length"


def test_errors_come_back_as_one_line(remote, make_checkpoint, tmp_path):
    with pytest.raises(TfchatError, match="empty"):
        list(remote.generate("", SamplingParams()))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="bad.ckpt: not a readable PyTorch checkpoint"):
        EngineProcess.load(bad, "cpu")


def test_steps_branches_the_lens_and_the_card_cross_the_pipe(remote, small_model):
    local = Engine.load(small_model, "cpu")
    params = SamplingParams(temperature=0.9, top_k=20, max_new_tokens=12, seed=3)
    expected = local.generate("The cat", params, top_logprobs=4, forced_ids=(279,))
    expected_text = "".join(expected)
    generation = remote.generate("The cat", params, top_logprobs=4, forced_ids=(279,))
    assert "".join(generation) == expected_text and expected_text.startswith(" the")
    assert len(generation.steps) == 12
    for got, want in zip(generation.steps, expected.steps):  # threads differ between processes: the last bits may
        assert [a.id for a in got.top] == [a.id for a in want.top]
        assert got.as_list()[1:4] == pytest.approx(want.as_list()[1:4], abs=1e-5)
    lens, local_lens = remote.logit_lens("The cat", (279,), 3), local.logit_lens("The cat", (279,), 3)
    assert [[i for i, _ in row] for row in lens] == [[i for i, _ in row] for row in local_lens]
    card = remote.describe()
    assert [list(t) for t in card["tensors"]] == [list(t) for t in local.describe()["tensors"]]
    assert card["process_resident_bytes"] > card["resident_bytes"] > 0
    assert token_text(remote.encoding, 279) == (" the", [32, 116, 104, 101])
    # Between generations only: a question while one streams would read its pieces.
    busy = remote.generate("Long", SamplingParams(max_new_tokens=5, seed=1))
    with pytest.raises(TfchatError, match="generating"):
        remote.logit_lens("x")
    list(busy)
    assert len(remote.logit_lens("x")) == 2


def test_batches_run_in_the_engine_process_as_in_process(remote, small_model):
    """The app's compare mode: the same rows, the same texts, whichever side of the pipe the model is."""
    from tfchat.core.engine.backend import Backend

    rows = [SamplingParams(temperature=0, max_new_tokens=12), SamplingParams(temperature=0.9, seed=3, max_new_tokens=5)]
    engine = Engine.load(small_model, "cpu")
    local = engine.generate_batch(["Deals close when", "A buyer"], rows)
    list(local)
    batch = remote.generate_batch(["Deals close when", "A buyer"], rows)
    ended = [event.row for event in batch if event.stats is not None]
    assert sorted(ended) == [0, 1] and batch.texts == local.texts
    assert [s.new_tokens for s in batch.stats] == [12, 5]
    assert isinstance(remote, Backend) and isinstance(engine, Backend)
