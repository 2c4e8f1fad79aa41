"""The app's generation state on its own, without Pilot: queue order, one running request, the
history written once whichever thread ends it, and what continue mode is given."""
import threading
import time

from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.tui.state.generation_session import GenerationSession
from tfchat.tui.state.requests import BranchRequest, ContinueRequest, PromptRequest

PARAMS = SamplingParams(temperature=0, max_new_tokens=5)


def prompt(text):
    return PromptRequest(text, "greedy", PARAMS, "completion")


def test_requests_start_in_the_order_sent_and_only_one_runs():
    session = GenerationSession()
    first, second = prompt("one"), prompt("two")
    session.queue(first)
    session.queue(second)
    assert session.next_request() is first
    session.begin(first, 1)
    assert session.next_request() is None  # the first still runs
    assert session.end() == (first, 1) and session.active is None
    assert session.next_request() is second and not session.pending


def test_each_run_has_its_own_stop_and_finish_events():
    session = GenerationSession()
    session.begin(prompt("one"), 1)
    stop, finished = session.cancel, session.generation_finished
    stop.set()
    session.end()
    session.begin(prompt("two"), 2)
    assert not session.cancel.is_set() and session.cancel is not stop and session.generation_finished is not finished


def test_regenerate_sends_the_last_prompt_not_a_continuation_or_a_branch():
    session = GenerationSession()
    session.queue(prompt("the prompt"))
    session.queue(ContinueRequest("", "greedy", PARAMS, "completion"))
    session.queue(BranchRequest("the prompt", "greedy", PARAMS, "completion"))
    assert session.last_prompt.prompt == "the prompt" and isinstance(session.last_prompt, PromptRequest)


def test_a_request_is_recorded_once_whichever_of_many_threads_ends_it():
    session = GenerationSession()
    request = prompt("once")
    writes, start = [], threading.Barrier(8)

    def end_it(n):
        start.wait()
        session.record_once(request, lambda: writes.append(n))
    threads = [threading.Thread(target=end_it, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(writes) == 1


def test_a_path_that_finds_the_row_claimed_returns_only_once_it_is_written():
    """A hangup ends the process as soon as its own path returns: a write the UI thread began must be done."""
    session = GenerationSession()
    request = prompt("written")
    began, written = threading.Event(), []

    def slow_write():
        began.set()
        time.sleep(0.3)
        written.append("row")

    ui = threading.Thread(target=session.record_once, args=(request, slow_write))
    ui.start()
    began.wait()
    session.record_once(request, lambda: written.append("second"))  # the exit path: must wait, then skip
    assert written == ["row"]
    ui.join()


def test_continue_mode_is_given_the_transcript_and_a_continuation_replaces_the_last_output():
    session = GenerationSession()
    session.remember(prompt("A"), "A and more")
    session.remember(prompt("B"), "B and so")
    assert session.continue_context("completion") == "BB and so"  # the last exchange's own text
    assert session.continue_context("continue") == "AA and moreBB and so"
    session.remember(ContinueRequest("", "greedy", PARAMS, "completion"), "B and so on")
    assert session.context_log == [("A", "A and more"), ("B", "B and so on")]
