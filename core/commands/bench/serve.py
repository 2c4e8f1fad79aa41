"""`tfchat bench --serve`: a bounded load test of `tfchat serve` on loopback.

Starts the server as a child process, sends the same requests (a mix of streamed
and not, each asking for a fixed number of tokens) one at a time, then
`concurrency` at a time, and prints errors, aggregate tokens/s of each, their
ratio, and p50/p99 latency. The child ends with the bench, whatever ends it.
With `--endpoint URL` the same load goes to a server already running there
(vLLM on an export, say), so two servers are measured alike.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tfchat.core.errors import TfchatError

PROMPTS = ["The key to a successful sale is", "Customers often ask", "When a client objects to the price,",
           "A good first meeting", "Follow up after the call by", "Trust is built when"]
READY_TIMEOUT_S = 120


@dataclass
class Outcome:
    ok: bool
    tokens: int
    latency_s: float
    problem: str = ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(model: str | None, device: str, port: int):
    command = [sys.executable, "-m", "tfchat", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--device", device, "--max-queue", "1000"]
    if model:
        command += ["--model", model]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # TFCHAT_EXIT_WITH_PARENT: the server ends itself if this bench is killed before it can end it.
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TFCHAT_EXIT_WITH_PARENT": "1"}
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise TfchatError(f"the server did not start: {child.stderr.read().decode(errors='replace').strip()}")
        try:
            return child, _first_model(Target("127.0.0.1", port, "/v1"), timeout=2)
        except (OSError, ValueError, LookupError, TypeError):
            time.sleep(0.2)
    child.terminate()
    raise TfchatError("the server did not answer within 2 minutes")


@dataclass
class Target:
    """The server under load: where its API is, and the model it serves."""
    host: str
    port: int
    api_path: str  # "/v1"
    model: str = ""


def _one_request(target: Target, number: int, tokens: int) -> Outcome:
    """Request `number` of the mix: every other one streamed; greedy, so its length is what was asked."""
    stream = number % 2 == 1
    body = {"model": target.model, "prompt": PROMPTS[number % len(PROMPTS)], "max_tokens": tokens, "temperature": 0,
            "stream": stream}
    if stream:  # OpenAI's API (and vLLM) refuse stream_options on a request that does not stream
        body["stream_options"] = {"include_usage": True}
    start = time.perf_counter()
    try:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=120)
        connection.request("POST", f"{target.api_path}/completions", json.dumps(body),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return Outcome(False, 0, time.perf_counter() - start, f"HTTP {response.status}")
        if not stream:
            answer = json.loads(response.read())
            used = answer["usage"]["completion_tokens"]
        else:
            used = 0
            for line in response:
                if line.startswith(b"data: {"):
                    chunk = json.loads(line[6:])
                    used = (chunk.get("usage") or {}).get("completion_tokens", used)
        connection.close()
        return Outcome(True, used, time.perf_counter() - start)
    except (OSError, ValueError, KeyError) as exc:
        return Outcome(False, 0, time.perf_counter() - start, str(exc))


def _run(target: Target, requests: int, tokens: int, concurrency: int) -> tuple[list[Outcome], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(lambda n: _one_request(target, n, tokens), range(requests)))
    return outcomes, time.perf_counter() - start


def _first_model(target: Target, timeout: float) -> str:
    """The id of the first model the server lists (OSError, ValueError, LookupError, TypeError if none)."""
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        connection.request("GET", f"{target.api_path}/models")
        return json.loads(connection.getresponse().read())["data"][0]["id"]
    finally:
        connection.close()


def _running_server(endpoint: str) -> Target:
    """A server already running at `endpoint` (http://HOST:PORT/v1), and the first model it lists."""
    url = urllib.parse.urlsplit(endpoint.rstrip("/"))
    if url.scheme != "http" or not url.hostname:
        raise TfchatError(f"--endpoint {endpoint}: give the server's http://HOST:PORT/v1")
    target = Target(url.hostname, url.port or 80, url.path)
    try:
        target.model = _first_model(target, timeout=10)
    except (OSError, ValueError, LookupError, TypeError):
        raise TfchatError(f"{endpoint}: no OpenAI-compatible server listing a model there") from None
    return target


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_serve_bench(model: str | None, device: str, requests: int, concurrency: int, tokens: int,
                    endpoint: str | None = None) -> int:
    if requests < 1 or not 1 <= concurrency <= 64 or tokens < 1:
        raise TfchatError("--requests and --tokens take 1 or more, --concurrency 1 to 64")
    child = None
    if endpoint:
        target = _running_server(endpoint)
    else:
        port = _free_port()
        child, model_name = _start_server(model, device, port)
        target = Target("127.0.0.1", port, "/v1", model_name)
    try:
        _run(target, min(requests, 4), tokens, 1)  # warm-up: each step traced once
        serial, serial_s = _run(target, requests, tokens, 1)
        together, together_s = _run(target, requests, tokens, concurrency)
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    figures = {"model": target.model if endpoint else model or "default", "server": endpoint or "tfchat serve",
               "requests": requests, "concurrency": concurrency,
               "tokens_per_request": tokens}
    for name, outcomes, seconds in (("one_at_a_time", serial, serial_s), ("concurrent", together, together_s)):
        latencies = [o.latency_s for o in outcomes if o.ok]
        figures[name] = {
            "errors": sum(not o.ok for o in outcomes),
            "tokens_per_s": round(sum(o.tokens for o in outcomes) / seconds, 1),
            "p50_latency_s": round(statistics.median(latencies), 3) if latencies else None,
            "p99_latency_s": round(_percentile(latencies, 0.99), 3) if latencies else None,
        }
    figures["ratio"] = round(figures["concurrent"]["tokens_per_s"] / figures["one_at_a_time"]["tokens_per_s"], 2)
    problems = [o.problem for o in serial + together if not o.ok]
    print(f"{endpoint or 'tfchat serve on loopback'}: {requests} requests of {tokens} tokens (half streamed), greedy")
    for name, label in (("one_at_a_time", "one at a time"), ("concurrent", f"{concurrency} at a time")):
        f = figures[name]
        print(f"  {label:<14} {f['tokens_per_s']:8.1f} tok/s  p50 {f['p50_latency_s']} s  p99 {f['p99_latency_s']} s"
              f"  errors {f['errors']}")
    print(f"  concurrent / one at a time: {figures['ratio']:.2f}x")
    if problems:
        print(f"  first error: {problems[0]}")
    print(json.dumps(figures))
    return 0
