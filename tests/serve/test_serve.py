"""`tfchat serve` as clients use it (OpenAI's own Python client, raw HTTP), and tfchat as a client of it."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from openai import OpenAI

from tfchat.core.engine.backend import Backend
from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import TfchatError
from tfchat.core.engine.http_client import HttpBackend
from tfchat.core.serve.openai_api import chat_prompt
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.engine.tokenizer import token_text
from support.reference import random_book_checkpoint
from support.cli import tfchat
from support.serve import KEY, call as _call, free_port as _free_port, start_serve

from support import ROOT  # noqa: E402

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(temperature=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One `tfchat serve` for the module: a small model, an API key, 4 rows, a queue of 2."""
    path = tmp_path_factory.mktemp("serve") / "model.ckpt"
    torch.save(random_book_checkpoint(32, 4, 2, 32, 100256, seed=7), path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TFCHAT_EXIT_WITH_PARENT": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tfchat", "serve", "--model", str(path), "--port", str(port),
                                "--api-key", KEY, "--max-rows", "4", "--max-queue", "2", "--device", "cpu"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    info = SimpleNamespace(url=f"http://127.0.0.1:{port}/v1", port=port, path=path, model="model.ckpt")
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _ = _call(info, "GET", "/v1/models")
            if status == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "tfchat serve never answered"
        time.sleep(0.1)
    engine = Engine.load(path, "cpu")
    info.engine = engine
    yield info
    engine.close()
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def client(server):
    return OpenAI(base_url=server.url, api_key=KEY, max_retries=0)


def _running(server) -> int:
    return _call(server, "GET", "/tfchat/load")[1]["running"]


def test_greedy_completions_equal_the_in_process_engine_token_for_token(server, client):
    answer = client.completions.create(model=server.model, prompt="The sales team", max_tokens=24, temperature=0)
    local = server.engine.generate("The sales team", GREEDY)
    text = "".join(local)
    assert answer.choices[0].text == text and answer.choices[0].finish_reason == "length"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 24)
    assert [m.id for m in client.models.list()] == [server.model]


def test_streamed_text_equals_the_whole_with_finish_reason_usage_and_done(server, client):
    whole = client.completions.create(model=server.model, prompt="Customers", max_tokens=20, temperature=0,
                                      stop=[" the"])
    chunks = list(client.completions.create(model=server.model, prompt="Customers", max_tokens=20, temperature=0,
                                            stop=[" the"], stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == whole.choices[0].text
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == whole.choices[0].finish_reason and all(r is None for r in reasons[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/v1/chat/completions", json.dumps(
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": True}),
        {"Authorization": f"Bearer {KEY}"})
    events = connection.getresponse().read().decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]" and json.loads(events[0][6:])["choices"][0]["delta"]["role"] == "assistant"
    # A chat reply loses the space after "Assistant:" streamed as whole (test_logprobs_match… checks the whole).
    messages = [{"role": "user", "content": "Why?"}]
    whole = client.chat.completions.create(model=server.model, messages=messages, max_tokens=6, temperature=0)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=server.model, messages=messages, max_tokens=6, temperature=0, stream=True) if c.choices)
    assert streamed == whole.choices[0].message.content and streamed


def test_logprobs_match_the_engine_in_both_shapes(server, client):
    local = server.engine.generate("The product", GREEDY.with_changes(max_new_tokens=6), top_logprobs=3)
    "".join(local)
    answer = client.completions.create(model=server.model, prompt="The product", max_tokens=6, temperature=0,
                                       logprobs=3, extra_body={"return_tokens_as_token_ids": True})
    logprobs = answer.choices[0].logprobs
    assert logprobs.tokens == [f"token_id:{s.id}" for s in local.steps]
    for got, step, top in zip(logprobs.token_logprobs, local.steps, logprobs.top_logprobs):
        assert abs(got - step.logprob) < 1e-4
        assert list(top) == [f"token_id:{a.id}" for a in step.top]
    chat = client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "Why?"}],
                                          max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
    reference = server.engine.generate(chat_prompt([{"role": "user", "content": "Why?"}]),
                                       GREEDY.with_changes(max_new_tokens=4, stop=("\nUser:",)), top_logprobs=2)
    said = "".join(reference)
    assert said.startswith(" ") and chat.choices[0].message.content == said[1:]  # without the template's space
    content = chat.choices[0].logprobs.content
    assert [c.bytes for c in content] == [token_text(server.engine.encoding, s.id)[1] for s in reference.steps]
    assert all(len(c.top_logprobs) == 2 and abs(c.logprob - s.logprob) < 1e-4 for c, s in zip(content, reference.steps))


@pytest.mark.parametrize("body,status,param", [
    ({"prompt": "x", "temperature": -1}, 400, "temperature"),
    ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ({"prompt": "x", "n": 2}, 400, "n"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "x", "model": "someone-else"}, 404, "model"),
    ({"prompt": "x" * 200_001}, 413, "prompt"),
    # Accepted and ignored before: refused now, so no client believes they took effect.
    ({"prompt": "x", "n": 1.0}, 400, "n"),
    ({"prompt": "x", "stop": 0}, 400, "stop"),
    ({"prompt": "x", "best_of": 2}, 400, "best_of"),
    ({"prompt": "x", "logit_bias": {"5": 10}}, 400, "logit_bias"),
    ({"prompt": "x", "suffix": " end"}, 400, "suffix"),
])
def test_bad_requests_get_openais_error_object_with_the_right_status(server, body, status, param):
    got, answer = _call(server, "POST", "/v1/completions", body)
    assert got == status and answer["error"]["param"] == param and "\n" not in answer["error"]["message"]


def test_auth_unknown_paths_and_broken_bodies(server):
    assert _call(server, "GET", "/v1/models", key=None)[0] == 401
    assert _call(server, "GET", "/v1/models", key="wrong")[0] == 401
    status, answer = _call(server, "GET", "/v1/engines")
    assert status == 404 and answer["error"]["type"] == "not_found_error"
    assert _call(server, "POST", "/v1/completions", raw_body="{not json")[0] == 400


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_gets_413_and_openai_s_error_not_a_reset(server, chunked):
    """100 MB, declared or sent in chunks: the client reads the answer, it is not cut off by a reset."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    piece = b"x" * (1 << 20)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    if chunked:
        connection.request("POST", "/v1/completions", (piece for _ in range(100)), headers, encode_chunked=True)
    else:
        connection.request("POST", "/v1/completions", piece * 100, headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413
    assert answer["error"]["code"] == "body_too_large" and "bytes" in answer["error"]["message"]
    assert _call(server, "GET", "/v1/models")[0] == 200  # and the server goes on


def test_a_client_that_disconnects_cancels_its_row(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/v1/completions", json.dumps({"prompt": "Once", "max_tokens": 30000, "stream": True}),
                       {"Authorization": f"Bearer {KEY}"})
    response = connection.getresponse()
    for _ in range(3):
        assert response.readline()
    assert _running(server) == 1
    connection.close()
    deadline = time.monotonic() + 5
    while _running(server):
        assert time.monotonic() < deadline, "the row was never cancelled"
        time.sleep(0.05)


def test_a_full_queue_answers_503_and_the_batch_serves_the_rest(server):
    connections = []
    for _ in range(6):  # 4 rows running, 2 waiting: the queue is full
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("POST", "/v1/completions", json.dumps({"prompt": "Go", "max_tokens": 30000, "stream": True}),
                           {"Authorization": f"Bearer {KEY}"})
        connections.append(connection)
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while _call(server, "GET", "/tfchat/load")[1]["waiting"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, answer = _call(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})
    assert status == 503 and answer["error"]["code"] == "queue_full"
    for connection in connections:
        connection.close()
    deadline = time.monotonic() + 10
    while _running(server) or _call(server, "GET", "/tfchat/load")[1]["waiting"]:
        assert time.monotonic() < deadline, "rows of closed connections were not cancelled"
        time.sleep(0.05)


def test_non_streamed_clients_that_give_up_free_their_rows_within_a_step(server):
    """Each of these rows updates every step, so a check that waited for a quiet moment never ran."""
    connections = []
    for count in range(1, 5):  # every row of the server's batch, one at a time (its queue holds only 2)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("POST", "/v1/completions", json.dumps({"prompt": "Go", "max_tokens": 30000}),
                           {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        connections.append(connection)
        deadline = time.monotonic() + 10
        while _running(server) < count:
            assert time.monotonic() < deadline, "the rows never started"
            time.sleep(0.02)
    for connection in connections:
        connection.close()
    deadline = time.monotonic() + 3
    while _running(server):
        assert time.monotonic() < deadline, "rows of clients that left are still generating"
        time.sleep(0.05)
    started = time.monotonic()
    status, answer = _call(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})
    assert status == 200 and time.monotonic() - started < 3


@pytest.mark.parametrize("max_tokens", [32769, 2**63, 10**30])
def test_max_tokens_is_bounded_by_the_servers_limit(server, max_tokens):
    status, answer = _call(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": max_tokens})
    assert status == 400 and answer["error"]["param"] == "max_tokens"
    assert "over this server's limit of 32768" in answer["error"]["message"]


def test_a_request_timeout_ends_a_generation_with_what_it_has(small_model):
    process, server = start_serve(small_model, "--request-timeout", "1", "--max-tokens-limit", "50000")
    try:
        started = time.monotonic()
        status, answer = _call(server, "POST", "/v1/completions", {"prompt": "Go", "max_tokens": 50000}, key=None)
        assert status == 200 and time.monotonic() - started < 5
        assert answer["choices"][0]["finish_reason"] == "length" and 0 < answer["usage"]["completion_tokens"] < 50000
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_by_default_32_requests_decode_together_each_as_it_would_alone(small_model):
    """Rows are batched up to --max-rows, 32 by default: 20 greedy requests at once each get the text
    the same request gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    process, server = start_serve(small_model)
    try:
        assert _call(server, "GET", "/tfchat/load", key=None)[1]["max_rows"] == 32
        prompts = [f"Customer {n} asks" for n in range(20)]

        def complete(prompt):
            status, answer = _call(server, "POST", "/v1/completions",
                                   {"prompt": prompt, "max_tokens": 12, "temperature": 0}, key=None)
            assert status == 200
            return answer["choices"][0]["text"]

        alone = [complete(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=20) as pool:
            together = list(pool.map(complete, prompts))
        assert together == alone
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_ipv6_loopback_in_brackets_is_loopback():
    from tfchat.core.serve.server import check_exposure, is_loopback

    assert is_loopback("[::1]") and is_loopback("::1") and is_loopback("127.0.0.2") and not is_loopback("[::]")
    assert check_exposure("[::1]", None, False) is None


def test_serving_beyond_loopback_without_a_key_is_refused(small_model):
    r = tfchat("serve", "--model", str(small_model), "--host", "0.0.0.0", "--port", str(_free_port()), timeout=30)
    assert r.returncode == 2 and "--api-key" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ----- tfchat as the client -------------------------------------------------------------------------
def test_the_http_backend_generates_what_the_engine_does_and_says_what_went_wrong(server):
    backend = HttpBackend.connect(server.url, KEY)
    assert isinstance(backend, Backend)  # the app's one interface, whichever backend it has
    assert backend.config.context_length == 32 and backend.flavour == "tfchat"
    generation = backend.generate("The sales team", GREEDY, top_logprobs=2)
    local = server.engine.generate("The sales team", GREEDY, top_logprobs=2)
    assert "".join(generation) == "".join(local)
    assert generation.stats.new_tokens == 24 and generation.stats.finish_reason == "length"
    assert [s.id for s in generation.steps] == [s.id for s in local.steps]  # the probability view's ids
    assert all(abs(a.logprob - b.logprob) < 1e-4 and [t.id for t in a.top] == [t.id for t in b.top]
               for a, b in zip(generation.steps, local.steps))
    batch = backend.generate_batch(["A", "B"], [GREEDY, GREEDY.with_changes(max_new_tokens=3)])
    ended = [event.row for event in batch if event.stats is not None]
    assert sorted(ended) == [0, 1] and batch.stats[1].new_tokens == 3
    with pytest.raises(TfchatError, match="refused the API key"):
        HttpBackend.connect(server.url, "wrong")
    with pytest.raises(TfchatError, match="cannot reach"):
        HttpBackend.connect(f"http://127.0.0.1:{_free_port()}/v1")


def test_generate_endpoint_on_the_command_line(server):
    r = tfchat("generate", "--endpoint", server.url, "--api-key", KEY, "--preset", "greedy", "--max-new-tokens", "24",
               "The sales team")
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == "".join(server.engine.generate("The sales team", GREEDY))
    r = tfchat("generate", "--endpoint", server.url, "x")
    assert r.returncode == 2 and "API key" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bench_serve_runs_a_bounded_load_test(small_model):
    r = tfchat("bench", "--serve", "--model", str(small_model), "--requests", "8", "--concurrency", "4",
               "--tokens", "6", timeout=180)
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["one_at_a_time"]["errors"] == figures["concurrent"]["errors"] == 0
    assert figures["concurrent"]["p99_latency_s"] >= figures["concurrent"]["p50_latency_s"] > 0
    assert "4 at a time" in r.stdout


async def test_the_app_drives_a_server_as_it_drives_a_local_model(server, tmp_path):
    from support.pilot import history_rows, notices, send, stream_then_compare, wait_for
    from tfchat.tui.app import make_app
    from tfchat.tui.widgets.status_line import StatusLine

    history = tmp_path / "history.sqlite3"
    app = make_app(preset="greedy", history=str(history), endpoint=server.url, api_key=KEY)
    async with app.run_test(size=(120, 40)) as pilot:
        view, comparison = await stream_then_compare(pilot, "The sales team", 24)
        assert view.output == "".join(server.engine.generate("The sales team", GREEDY))
        assert len(view.branch.steps) == 24  # the probability view and the token cursor have their data
        assert [c.finish_reason for c in comparison.columns] == ["length", "length"]
    rows = history_rows(history)
    assert rows[0][3] == "greedy" and len(rows) == 3
    unreachable = make_app(history=str(tmp_path / "other.sqlite3"), endpoint=f"http://127.0.0.1:{_free_port()}/v1")
    async with unreachable.run_test() as pilot:
        # Nothing there yet: the app keeps trying (tests/tui/test_endpoint_app.py) and says why nothing runs.
        await wait_for(pilot, lambda: unreachable.query_one(StatusLine).state == "retrying", what="retrying")
        assert any("cannot reach" in n for n in notices(unreachable))
        await send(pilot, "still here")  # the app stays up and keeps the prompt for when the server answers
        assert unreachable.query_one(StatusLine).queued == 1


@pytest.mark.parametrize("owned_by,sent,unsent", [
    ("tfchat", {"top_k": 50, "min_p": 0.05, "repetition_penalty": 1.1}, []),
    ("llamacpp", {"top_k": 50, "min_p": 0.05, "repeat_penalty": 1.1}, []),
    ("openai", {}, ["top_k", "min_p", "repetition_penalty"]),
])
def test_presets_map_onto_what_each_kind_of_server_takes(owned_by, sent, unsent):
    backend = HttpBackend("http://127.0.0.1:1/v1", None, "m", {"id": "m", "owned_by": owned_by})
    params = SamplingParams(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05, repetition_penalty=1.1,
                            max_new_tokens=30, stop=("\n\n",))
    body, missing = backend.request_body("Hi", params, seed=5, top_logprobs=0)
    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "seed", "stop")} == {
        "max_tokens": 30, "temperature": 0.7, "top_p": 0.9, "seed": 5, "stop": ["\n\n"]}
    assert {k: v for k, v in body.items() if k in ("top_k", "min_p", "repetition_penalty", "repeat_penalty")} == sent
    assert missing == unsent
    generation = backend.generate("Hi", params)
    assert (generation.notice is None) == (not unsent)
    assert not unsent or "top_k, min_p, repetition_penalty" in generation.notice


def test_a_dropped_link_ends_the_server_cleanly(small_model):
    """SIGHUP (the SSH session that started it is gone): the server shuts down, exit 129, no abort."""
    import signal

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "tfchat", "serve", "--model", str(small_model), "--port",
                                str(port), "--device", "cpu"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    info = SimpleNamespace(port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if _call(info, "GET", "/v1/models", key=None)[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=10) == 128 + signal.SIGHUP
    assert "terminate called" not in process.stderr.read().decode()


BAD_BODIES = [
    ("[" * 100000, None),
    ('{"a":' * 50000 + "1" + "}" * 50000, None),
    ('{"prompt": "\\ud800", "echo": true, "max_tokens": 2}', "prompt"),
    ('{"prompt": "ok", "stop": ["\\udfff"], "max_tokens": 2}', "stop"),
]
BAD_CHATS = [
    ([{"role": "user", "content": [{"text": 5}]}], "messages[0].content[0]"),
    ([{"role": "user", "content": None}], "messages[0].content"),
    ([{"role": "user", "content": ["a"]}], "messages[0].content[0]"),
    ([{"role": ["user"], "content": "hi"}], "messages[0]"),
    ([{"role": {"a": 1}, "content": "hi"}], "messages[0]"),
    ([{"role": "user", "content": "\ud800"}], "messages[0].content"),
]


def test_bad_bodies_are_400s_naming_the_field_and_shutdown_ends_open_requests_as_abort(small_model, tmp_path):
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process, server = start_serve(small_model, stderr=log)
        try:
            for raw, param in BAD_BODIES:
                status, answer = _call(server, "POST", "/v1/completions", raw_body=raw, key=None)
                assert status == 400 and answer["error"]["param"] == param, (raw[:40], answer)
            for messages, param in BAD_CHATS:
                status, answer = _call(server, "POST", "/v1/chat/completions", {"messages": messages}, key=None)
                assert status == 400 and answer["error"]["param"] == param, (messages, answer)
            # A client that leaves halfway through sending its body.
            with socket.create_connection(("127.0.0.1", server.port)) as raw_socket:
                raw_socket.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 1000\r\n\r\n{\"prompt\": ")
            # Non-streamed requests still generating when SIGTERM arrives: each ends with its partial text.
            answers, threads = [], []

            def ask():
                answers.append(_call(server, "POST", "/v1/completions", {"prompt": "Go", "max_tokens": 30000}, key=None))
            import threading
            for _ in range(3):
                threads.append(threading.Thread(target=ask))
                threads[-1].start()
            deadline = time.monotonic() + 10
            while _call(server, "GET", "/tfchat/load", key=None)[1]["running"] < 3:
                assert time.monotonic() < deadline, "the rows never started"
                time.sleep(0.05)
            time.sleep(0.3)
            process.terminate()
            started = time.monotonic()
            code = process.wait(timeout=10)
            assert time.monotonic() - started < 2.0 and code == 143
            for thread in threads:
                thread.join(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
    assert len(answers) == 3
    for status, answer in answers:
        assert status == 200 and answer["choices"][0]["finish_reason"] == "abort", answer
        assert answer["choices"][0]["text"] and 0 < answer["usage"]["completion_tokens"] < 30000
    log_text = log_path.read_text()
    assert "Traceback" not in log_text and "Exception in ASGI" not in log_text, log_text


def _closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, BlockingIOError):
        return False


def test_connections_that_trickle_their_headers_are_closed_and_others_are_served(small_model):
    """Slowloris: before, 300 such connections stayed open for as long as their clients liked."""
    process, server = start_serve(small_model, "--read-timeout", "2")
    trickling = []
    try:
        for _ in range(30):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n")
            connection.setblocking(False)
            trickling.append(connection)
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # a header byte every 0.25 s: never a whole request
            for connection in trickling:
                try:
                    connection.sendall(b"X")
                except OSError:
                    pass  # already closed by the server
            assert _call(server, "GET", "/v1/models", key=None)[0] == 200  # the server still answers
            time.sleep(0.25)
        time.sleep(0.5)
        assert all(_closed_by_server(connection) for connection in trickling)
    finally:
        for connection in trickling:
            connection.close()
        process.terminate()
        process.wait(timeout=10)


def test_a_body_that_trickles_past_the_read_timeout_gets_a_408_error_object(small_model):
    process, server = start_serve(small_model, "--read-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\"")
            answer = b""
            while b"}" not in answer:  # the error object arrives without the rest of the body
                chunk = connection.recv(4096)
                assert chunk, "the server closed the connection without an answer"
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["error"]["code"] == "body_too_slow"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_read_timeout_of_zero_is_refused_in_one_line(small_model):
    result = tfchat("serve", "--model", str(small_model), "--read-timeout", "0")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "tfchat: --read-timeout 0.0: give seconds above 0"]
