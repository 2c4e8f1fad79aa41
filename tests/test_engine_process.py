"""The engine in its own process behaves like the in-process one."""
import threading

import pytest

from core.engine import Engine
from core.engine_process import EngineProcess
from core.errors import CheckpointError, TfchatError
from core.sampling import SamplingParams


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
