"""The second core: taken while the other cores are idle, given back within a few steps when a
neighbour comes, tried again after a wait that grows; and the load it reads is the real one."""
import subprocess
import sys
import time

import pytest
import torch

from tfchat.core.errors import TfchatError
from tfchat.core.system import second_core
from tfchat.core.system.helper_thread import usable_cores
from tfchat.core.system.second_core import OtherCoresLoad, SecondCore

needs_two_cores = pytest.mark.skipif(usable_cores() < 2, reason="needs two cores")


class _Load:
    """The other cores' load as the test sets it (the real reading is tested below)."""

    def __init__(self, cores: float):
        self.cores = cores

    def since_last(self):
        return self.cores

    def sampled_at(self):
        return float("inf")  # always fresh: the tests set the clock


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _steps(core: SecondCore, seconds: float, count: int, clock: _Clock) -> list[int]:
    taken = []
    for _ in range(count):
        readers = core.readers()
        taken.append(readers)
        core.record(readers, seconds if readers == 2 else 2 * seconds)
        clock.now += seconds
    return taken


@needs_two_cores
def test_an_idle_second_core_is_taken_and_given_back_within_two_steps_of_a_neighbour(monkeypatch):
    monkeypatch.delenv("TFCHAT_READERS", raising=False)
    load, clock = _Load(0.1), _Clock()
    core = SecondCore(load, clock)
    assert _steps(core, 0.01, 4, clock) == [1, 1, 2, 2]  # two one-reader steps to compare with, then two
    # A neighbour: two-thread steps three times slower. Two of them, and the engine is back on one.
    assert _steps(core, 0.03, 3, clock) == [2, 2, 1]
    assert core.retreats == 1
    load.cores = 0.0  # gone again: the next try waits a second
    assert _steps(core, 0.01, 50, clock)[-1] == 1
    clock.now += 1.0
    assert _steps(core, 0.01, 3, clock) == [2, 2, 2]
    _steps(core, 0.03, 2, clock)  # back again: this time the wait doubles
    assert core.retreats == 2
    clock.now += 1.0
    assert _steps(core, 0.01, 1, clock) == [1]
    clock.now += 1.0
    assert _steps(core, 0.01, 1, clock) == [2]


@needs_two_cores
def test_a_busy_box_keeps_one_reader(monkeypatch):
    monkeypatch.delenv("TFCHAT_READERS", raising=False)
    clock = _Clock()
    core = SecondCore(_Load(0.9), clock)
    assert set(_steps(core, 0.01, 200, clock)) == {1}


@needs_two_cores
def test_two_threads_no_faster_than_one_are_given_up_for_a_long_while(monkeypatch):
    monkeypatch.delenv("TFCHAT_READERS", raising=False)
    clock = _Clock()
    core = SecondCore(_Load(0.0), clock)
    for _ in range(40):  # a tiny model: two threads cost what one does
        readers = core.readers()
        core.record(readers, 0.001)
        clock.now += 0.001
    assert core.readers() == 1
    clock.now += second_core.LONGEST_WAIT - 1
    assert core.readers() == 1
    clock.now += 2
    assert core.readers() == 2


def test_the_environment_fixes_the_choice(monkeypatch):
    monkeypatch.setenv("TFCHAT_READERS", "2")
    assert SecondCore(_Load(5.0), _Clock()).readers() == 2
    monkeypatch.setenv("TFCHAT_READERS", "3")
    with pytest.raises(TfchatError, match="TFCHAT_READERS must be 1, 2 or auto"):
        SecondCore(_Load(0.0), _Clock())


@pytest.mark.slow  # a quiet box: the fast subset's second worker would be a neighbour too
@needs_two_cores
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_the_load_read_from_proc_stat_sees_a_neighbour_and_not_this_process():
    load = OtherCoresLoad()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        load.since_last()
        time.sleep(0.5)
        busy = load.since_last()
    finally:
        burner.kill()
        burner.wait()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # this process burning a core is not a neighbour
        pass
    own = load.since_last()
    assert busy >= 0.7, busy
    assert own < 0.5, own


def test_two_readers_give_one_readers_logits(tmp_path, monkeypatch):
    """float16 weights: bit for bit (fbgemm splits by output feature); float32 within 1e-5."""
    from support.reference import random_book_checkpoint
    from tfchat.core.nn.checkpoint import load_checkpoint
    from tfchat.core.nn.fast_model import FastModel
    from tfchat.core.system.helper_thread import HelperThread

    torch.save(random_book_checkpoint(64, 4, 2, 32, 3000, seed=4), tmp_path / "m.ckpt")
    loaded = load_checkpoint(tmp_path / "m.ckpt")
    for dtype in (torch.float16, torch.float32):
        state = {key: value.to(dtype) for key, value in loaded.state_dict.items()}
        logits = {}
        for readers in ("1", "2"):
            monkeypatch.setenv("TFCHAT_READERS", readers)
            helper = HelperThread()
            model = FastModel(loaded.config, state, torch.device("cpu"), helper)
            cache = model.new_cache()
            model.last_logits(torch.arange(10), cache)
            logits[readers] = torch.stack([model.last_logits(torch.tensor([t]), cache) for t in range(11, 20)])
            helper.close()
        if dtype == torch.float16:
            assert torch.equal(logits["1"], logits["2"])
        else:
            torch.testing.assert_close(logits["1"], logits["2"], atol=1e-5, rtol=0)


def test_only_blocks_worth_two_readers_get_a_second_core(tmp_path, monkeypatch):
    from support.reference import random_book_checkpoint
    from tfchat.core.nn.checkpoint import load_checkpoint
    from tfchat.core.nn.fast_model import TWO_READERS_MIN_BYTES, FastModel
    from tfchat.core.system.helper_thread import HelperThread

    monkeypatch.delenv("TFCHAT_READERS", raising=False)
    helper = HelperThread()
    try:
        for d_model, worth in ((64, False), (512, True)):
            torch.save(random_book_checkpoint(d_model, 8, 2, 16, 300, seed=1), tmp_path / "m.ckpt")
            loaded = load_checkpoint(tmp_path / "m.ckpt")
            model = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper)
            blocks = sum(block.nbytes() for block in model.blocks)
            assert (blocks >= TWO_READERS_MIN_BYTES) == worth
            assert (model.second_core is not None) == worth
            monkeypatch.setenv("TFCHAT_READERS", "2")  # a fixed choice holds for any model
            assert FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper).second_core is not None
            monkeypatch.delenv("TFCHAT_READERS")
    finally:
        helper.close()
