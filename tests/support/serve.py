"""`tfchat serve` started for a test, and plain HTTP calls to it."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

from support import ROOT

KEY = "test-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(server, method, path, body=None, key=KEY, raw_body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    connection.request(method, path, raw_body if raw_body is not None else
                       (json.dumps(body) if body is not None else None), headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def start_serve(model, *extra, stderr=subprocess.DEVNULL):
    """`tfchat serve` on a free loopback port, without a key, once it answers: (process, server)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TFCHAT_EXIT_WITH_PARENT": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tfchat", "serve", "--model", str(model), "--port", str(port),
                                "--device", "cpu", *extra], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    server = SimpleNamespace(port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(server, "GET", "/v1/models", key=None)[0] == 200:
                return process, server
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "tfchat serve never answered"
        time.sleep(0.1)
