"""`--endpoint` against servers that misbehave: the key never leaves its origin, and every failure is one line."""
import threading

import pytest

from tfchat.core.engine.http_client import HttpBackend
from tfchat.core.settings.sampling_params import SamplingParams

from support.hostile_server import MODELS, HostileServer, completion_stream, drip, redirect, send_events, send_json, send_stream
from support.cli import tfchat

KEY = "SECRETKEY"


@pytest.fixture
def servers():
    made = []

    def make(routes):
        server = HostileServer(routes)
        made.append(server)
        return server
    yield make
    for server in made:
        server.close()


def _generate(server, *extra):
    return tfchat("generate", "--endpoint", server.url, "--api-key", KEY, "--preset", "greedy", "--max-new-tokens", "4",
                  *extra, "Hi",
                  timeout=60)


def _one_line_exit_2(r, needle):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert needle in r.stderr, r.stderr


def test_a_redirect_to_another_origin_is_not_followed_and_the_key_stays_home(servers):
    trap = servers({("GET", "/v1/models"): send_json(200, MODELS)})
    server = servers({("GET", "/v1/models"): redirect(302, f"http://127.0.0.1:{trap.port}/v1/models")})
    r = _generate(server)
    _one_line_exit_2(r, "another origin")
    assert trap.requests == []  # neither the key nor anything else reached the other port


def test_a_redirected_post_is_refused_not_resent_as_a_get(servers):
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): redirect(302, "/v1/elsewhere"),
                      ("GET", "/v1/elsewhere"): send_stream(completion_stream())})
    r = _generate(server)
    _one_line_exit_2(r, "a request with a body is not resent")
    assert [(m, p) for m, p, _ in server.requests] == [("GET", "/v1/models"), ("POST", "/v1/completions")]


def test_a_redirect_within_the_same_origin_is_followed_with_the_key(servers):
    server = servers({("GET", "/v1/models"): redirect(301, "/v2/models"),
                      ("GET", "/v2/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_stream(completion_stream())})
    r = _generate(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Hello there")
    followed = [headers for method, path, headers in server.requests if path == "/v2/models"]
    assert followed and followed[0].get("Authorization") == f"Bearer {KEY}"


TFCHAT_MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "tfchat"}]}
CHUNK = {"choices": [{"index": 0, "text": "ok", "finish_reason": None}]}


@pytest.mark.parametrize("answer,needle", [
    ({"data": 5}, "not an OpenAI model list"),
    ({"data": [1, {"id": "m"}]}, "is not a model with an 'id'"),
    ({"data": [{"id": "m", "context_length": "abc"}]}, "context_length \"abc\" is not a window size"),
    (b'{"data": [{"id": "m", "context_length": 1e400}]}', "is not a window size"),
    (b"<html>hello</html>", "not JSON"),
], ids=["data-5", "data-entry-1", "window-abc", "window-1e400", "html"])
def test_a_malformed_model_list_is_one_line(servers, answer, needle):
    server = servers({("GET", "/v1/models"): send_json(200, answer)})
    _one_line_exit_2(_generate(server), needle)


@pytest.mark.parametrize("events,needle", [
    ([[1, 2]], "not a completion chunk"),
    ([5], "not a completion chunk"),
    (["hello"], "not a completion chunk"),
    ([{"error": "boom"}], "the server failed: boom"),
    ([{"choices": [1]}], "not a completion"),
    ([{"choices": 7}], "not a list"),
    ([{"choices": [{"text": 5}]}], "not a completion"),
    ([CHUNK, {"choices": [], "usage": {"completion_tokens": "many"}}], "not token counts"),
    ([b"{not json"], "not JSON"),
], ids=["list", "number", "string", "error-string", "choice-1", "choices-7", "text-5", "usage-strings", "junk"])
def test_a_malformed_stream_is_one_line_never_a_bug(servers, events, needle):
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_events(events)})
    _one_line_exit_2(_generate(server), needle)


@pytest.mark.parametrize("logprobs,needle", [
    ({"tokens": ["token_id:abc"], "token_logprobs": [-1.0], "top_logprobs": [{}]}, "spelled a token"),
    ({"tokens": ["token_id:5"], "token_logprobs": ["x"], "top_logprobs": [{}]}, "not a number"),
    ({"tokens": ["token_id:5"], "token_logprobs": [-1.0], "top_logprobs": [5]}, "not in the completions shape"),
    ([1, 2], "not in the completions shape"),
], ids=["id-abc", "logprob-string", "top-5", "list"])
def test_malformed_logprobs_are_one_line(servers, logprobs, needle):
    chunk = {"choices": [{"index": 0, "text": "ok", "logprobs": logprobs, "finish_reason": None}]}
    server = servers({("GET", "/v1/models"): send_json(200, TFCHAT_MODELS),
                      ("POST", "/v1/completions"): send_events([chunk])})
    _one_line_exit_2(_generate(server, "--logprobs", "2"), needle)


def test_plain_json_instead_of_an_event_stream_says_so(servers):
    whole = {"choices": [{"index": 0, "text": "Hello", "finish_reason": "length"}]}
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_json(200, whole)})
    _one_line_exit_2(_generate(server), "not an event stream")


def test_an_endless_stream_stops_at_the_length_asked_for(servers):
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_events([CHUNK] * 5000, done=False)})
    r = _generate(server)
    _one_line_exit_2(r, "kept streaming past the 4 tokens asked for")
    assert r.stdout == "ok" * 4 + "\n"


@pytest.mark.parametrize("line,needle", [(b":\n", "only keep-alives for 1 s"), (b"", "sent nothing for 1 s")],
                         ids=["drip", "silent"])
def test_a_server_that_sends_no_token_times_out(servers, line, needle):
    import time

    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): drip(line, 0.2, 15)})
    started = time.monotonic()
    r = _generate(server, "--timeout", "1")
    _one_line_exit_2(r, needle)
    assert time.monotonic() - started < 10


def test_timeout_must_be_seconds(servers):
    server = servers({("GET", "/v1/models"): send_json(200, MODELS)})
    _one_line_exit_2(_generate(server, "--timeout", "0"), "--timeout 0")


async def test_the_app_shows_a_malformed_server_as_one_line_and_stays_up(servers, tmp_path):
    from support.pilot import notices, wait_for
    from tfchat.tui.app import make_app
    from tfchat.tui.widgets.status_line import StatusLine

    server = servers({("GET", "/v1/models"): send_json(200, {"data": [1]})})
    app = make_app(None, "cpu", None, str(tmp_path / "history.sqlite3"), endpoint=server.url)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.query_one(StatusLine).state == "failed", what="the failure")
        assert any("is not a model with an 'id'" in n for n in notices(app))
        assert not any("Error" in n for n in notices(app))  # a sentence, not a Python exception


def test_a_stream_stopped_before_its_usage_counts_the_tokens_it_brought(servers):
    words = [" the", " customer", " wants", " a", " clear", " answer"] * 3
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_events(
                          [{"choices": [{"index": 0, "text": w, "finish_reason": None}]} for w in words], done=False)})
    backend = HttpBackend.connect(server.url, api_key=KEY)
    cancel = threading.Event()
    generation = backend.generate("Hi", SamplingParams(temperature=0.0, max_new_tokens=100), cancel)
    for count, _ in enumerate(generation, start=1):
        if count == 12:
            cancel.set()  # as esc does: the stream ends with no usage chunk
    assert generation.stats.finish_reason == "stopped" and generation.text.startswith(" the customer")
    assert generation.stats.new_tokens == len(backend.encoding.encode(generation.text)) >= 12
