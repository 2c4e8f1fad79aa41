"""The helper thread: the caller's half always runs, the other half exactly once, on whichever thread is free."""
import threading
import time

import pytest

from tfchat.core.system.helper_thread import HelperThread


def test_each_half_runs_exactly_once_and_the_helper_takes_one_when_it_can():
    helper = HelperThread()
    ran = {"mine": 0, "theirs": 0}
    threads = set()

    def mine():
        ran["mine"] += 1
        time.sleep(0.002)  # long enough for an idle helper to pick up the other half

    def theirs():
        ran["theirs"] += 1
        threads.add(threading.current_thread().name)

    for _ in range(200):
        helper.pair(mine, theirs)
    helper.close()
    assert ran == {"mine": 200, "theirs": 200}
    assert "tfchat-helper" in threads


def test_a_helper_that_cannot_run_is_never_waited_for():
    """A helper without a core (here: busy with a job that never ends) makes the caller do both halves."""
    helper = HelperThread()
    stuck = threading.Event()
    first = threading.Thread(target=helper.pair, args=(lambda: time.sleep(0.05), stuck.wait))
    first.start()  # the helper takes the second half of this one and blocks on it
    time.sleep(0.2)
    done = []
    start = time.monotonic()
    for i in range(50):
        helper.pair(lambda: None, lambda i=i: done.append(i))
    assert done == list(range(50)) and time.monotonic() - start < 1.0
    stuck.set()
    first.join(5)
    helper.close()


def test_an_error_in_the_helper_reaches_the_caller():
    helper = HelperThread()

    def theirs():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        for _ in range(100):  # until the helper, not the caller, is the one that runs it
            helper.pair(lambda: time.sleep(0.002), theirs)
    helper.close()


def test_an_exception_in_the_callers_half_leaves_no_helper_work_running():
    # Ctrl+C in the caller's half: the interpreter may exit next, and it aborts if the
    # helper is still inside torch code. The helper's half is cancelled or finished first.
    helper = HelperThread()
    started, finished = threading.Event(), threading.Event()

    def theirs():
        started.set()
        time.sleep(0.2)
        finished.set()

    def mine():
        started.wait(1)  # the helper has taken its half
        raise KeyboardInterrupt

    try:
        helper.pair(mine, theirs)
    except KeyboardInterrupt:
        assert finished.is_set() or not started.is_set()
    else:
        raise AssertionError("the caller's exception was swallowed")
    helper.close()
