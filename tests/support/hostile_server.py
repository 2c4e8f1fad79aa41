"""A small HTTP server on loopback whose every answer a test chooses, to try `--endpoint` against
servers that misbehave. It records each request it gets (method, path, headers)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "someone"}]}


def completion_stream(pieces=("Hello", " there")) -> bytes:
    """A well-formed completions event stream."""
    events = [{"choices": [{"index": 0, "text": p, "finish_reason": None}]} for p in pieces]
    events.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


class HostileServer:
    """`routes` maps (method, path) to a function(handler) that writes the whole answer."""

    def __init__(self, routes: dict, port: int = 0):
        self.routes = routes
        self.requests: list[tuple[str, str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, dict(self.headers)))
                route = owner.routes.get((self.command, self.path))
                if route is None:
                    self.send_error(404)
                    return
                route(self)

            do_GET = do_POST = _answer

            def log_message(self, *args):  # quiet: the test reads `requests`
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def send_json(status: int, payload, headers: dict | None = None):
    def route(handler):
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    return route


def redirect(status: int, location: str):
    def route(handler):
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


def send_stream(data: bytes):
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
    return route


def send_events(events: list, done: bool = True):
    """An event stream of these values, each as it is (not necessarily what OpenAI sends)."""
    data = b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)
    return send_stream(data + (b"data: [DONE]\n\n" if done else b""))


def drip(line: bytes, every_s: float, for_s: float):
    """An event stream that sends only `line` every `every_s` seconds, for `for_s` seconds."""
    import time

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        deadline = time.monotonic() + for_s
        try:
            while time.monotonic() < deadline:
                if line:
                    handler.wfile.write(line)
                    handler.wfile.flush()
                time.sleep(every_s)
        except OSError:
            pass  # the client gave up, as it should
    return route
