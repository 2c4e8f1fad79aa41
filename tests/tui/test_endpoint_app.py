"""The app over --endpoint when the server is not there yet, and what it shows of a server's model."""
import threading

import pytest

from tfchat.core.engine.http_wire import UnreachableError
from tfchat.core.engine.reconnect import RETRY_DELAYS_S, Reconnect, retry_delays
from tfchat.core.errors import TfchatError
from support.hostile_server import MODELS, HostileServer, completion_stream, send_json, send_stream
from support.pilot import finished, notices, ready, send, shown_text, views, wait_for
from support.serve import free_port
from tfchat.tui.app import make_app
from tfchat.tui.screens.inspector_screen import InspectorScreen
from tfchat.tui.widgets.status_line import StatusLine

SERVED = {"object": "list", "data": [{"id": "reader-model", "object": "model", "owned_by": "tfchat",
                                      "created": 1767225600, "context_length": 64, "parameters": 16_700_000}]}


def serving(port: int = 0, models=MODELS) -> HostileServer:
    return HostileServer({("GET", "/v1/models"): send_json(200, models),
                          ("POST", "/v1/completions"): send_stream(completion_stream(("Hello", " there")))}, port)


def state(app) -> str:
    return app.query_one(StatusLine).state


# ----- the schedule, without the app ----------------------------------------------------------------
def test_reconnect_waits_longer_each_time_and_stops_at_half_a_minute():
    delays = retry_delays()
    assert [next(delays) for _ in range(9)] == list(RETRY_DELAYS_S) + [30, 30, 30]


def test_reconnect_tries_until_the_server_answers_and_says_each_wait():
    answers = [UnreachableError("cannot reach x: refused")] * 2 + ["connected"]
    waits = []

    def connect():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    reconnect = Reconnect(lambda: iter([0.01, 0.02, 0.04]))
    assert reconnect.run(connect, lambda reason, delay, tries: waits.append((reason, delay, tries))) == "connected"
    assert waits == [("cannot reach x: refused", 0.01, 1), ("cannot reach x: refused", 0.02, 2)]


def test_reconnect_gives_up_at_once_on_an_error_waiting_would_not_fix():
    calls = []

    def refused_key():
        calls.append(1)
        raise TfchatError("the server refused the API key (HTTP 401)")

    with pytest.raises(TfchatError, match="401"):
        Reconnect(lambda: iter([0.01] * 5)).run(refused_key, lambda *_: None)
    assert len(calls) == 1


def test_retry_now_cuts_a_long_wait_short_and_stop_ends_it():
    reconnect = Reconnect(lambda: iter([60] * 5))
    tries = []

    def connect():
        tries.append(1)
        if len(tries) < 2:
            raise UnreachableError("cannot reach x")
        return "up"

    waiting = threading.Event()
    result = []
    worker = threading.Thread(target=lambda: result.append(reconnect.run(connect, lambda *_: waiting.set())))
    worker.start()
    assert waiting.wait(5)
    reconnect.retry_now()
    worker.join(5)
    assert result == ["up"]

    stopped = Reconnect(lambda: iter([60] * 5))
    waiting.clear()
    worker = threading.Thread(target=lambda: result.append(stopped.run(
        lambda: (_ for _ in ()).throw(UnreachableError("down")), lambda *_: waiting.set())))
    worker.start()
    assert waiting.wait(5)
    stopped.stop()
    worker.join(5)
    assert not worker.is_alive() and result[-1] is None


# ----- the app ------------------------------------------------------------------------------------
async def test_a_server_down_at_start_is_retried_prompts_wait_and_run_once_it_answers(tmp_path):
    port = free_port()
    app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=f"http://127.0.0.1:{port}/v1")
    server = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: state(app) == "retrying", what="retrying")
            assert any("cannot reach" in n and "Trying again in 1 s" in n and "ctrl+r" in n for n in notices(app))
            await send(pilot, "Queued while the server is away")
            await wait_for(pilot, lambda: app.query_one(StatusLine).queued == 1, what="the prompt queued")
            assert not any("No model is loaded" in n for n in notices(app))
            await wait_for(pilot, lambda: any("tried 2 times" in n for n in notices(app)), timeout=10,
                           what="a second try, counted in the same notice")
            assert sum("cannot reach" in n for n in notices(app)) == 1  # one notice, not one per try
            server = serving(port)  # the server comes up: the next try (at most 4 s away) finds it
            await ready(pilot)
            await finished(pilot, 1)
            assert views(app)[0].output == "Hello there"
            assert any("answered after" in n for n in notices(app))
    finally:
        if server is not None:
            server.close()


async def test_ctrl_r_tries_the_server_now_instead_of_waiting(tmp_path):
    port = free_port()
    app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=f"http://127.0.0.1:{port}/v1")
    app.reconnect = Reconnect(lambda: iter([120] * 10))  # a wait longer than the test
    server = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: state(app) == "retrying", what="retrying")
            server = serving(port)
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: state(app) == "ready", timeout=10, what="connected by ctrl+r")
    finally:
        if server is not None:
            server.close()


async def test_quitting_while_waiting_for_a_server_ends_at_once(tmp_path):
    app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=f"http://127.0.0.1:{free_port()}/v1")
    app.reconnect = Reconnect(lambda: iter([120] * 10))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: state(app) == "retrying", what="retrying")
        await pilot.press("ctrl+q")
    assert app.reconnect.stopped
    assert not [t for t in threading.enumerate() if "loading the model" in t.name]


async def test_a_refused_key_fails_at_once_and_is_not_retried(tmp_path):
    server = HostileServer({("GET", "/v1/models"): send_json(401, {"error": {"message": "bad key"}})})
    try:
        app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=server.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: state(app) == "failed", what="failed")
            assert any("refused the API key" in n for n in notices(app))
        assert len(server.requests) == 1
    finally:
        server.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_inspector_over_an_endpoint_shows_what_the_server_says_and_where_the_weights_are(tmp_path, size):
    server = serving(models=SERVED)
    try:
        app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=server.url)
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            assert "16.7M params" in str(app.query_one(StatusLine).render()) or size[0] < 100
            await pilot.press("f8")
            await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
            await pilot.pause()
            shown = shown_text(app.screen.query_one("#summary")) + shown_text(app.screen.query_one("#tensors"))
            shown = " ".join(shown.split())  # the weights' sentence wraps at 80 columns
            for expected in ("reader-model", "tfchat", "64 tokens", "16,700,000", "live on the server"):
                assert expected in shown, expected
            assert "unknown" not in shown
    finally:
        server.close()


async def test_over_an_endpoint_the_overlap_view_holds_the_streamed_text_against_the_corpus(tmp_path):
    from tfchat.tui.screens.overlap_screen import OverlapScreen

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Say Hello there to every customer who walks in, every single morning of the week.\n")
    server = HostileServer({("GET", "/v1/models"): send_json(200, MODELS),
                            ("POST", "/v1/completions"): send_stream(completion_stream(
                                (" Hello there to every customer who", " walks in, every single morning")))})
    app = make_app(history=str(tmp_path / "h.sqlite3"), endpoint=f"http://127.0.0.1:{server.port}/v1",
                   corpus=str(corpus))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await ready(pilot)
            await wait_for(pilot, lambda: app.chat.corpus.ready(), what="the corpus indexed")
            await send(pilot, "Say")
            await finished(pilot, 1)
            await pilot.press("f12")
            screen = app.screen
            assert isinstance(screen, OverlapScreen)
            [span] = screen.found.spans
            assert span.text == " Hello there to every customer who walks in, every single morning"
            assert span.line == 1 and screen.found.copied_fraction == 1.0
    finally:
        server.close()
