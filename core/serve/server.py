"""`tfchat serve`: the engine behind OpenAI's HTTP API (Starlette on uvicorn, the `serve` extra).

Every request becomes a row of one continuously batched generation
(`core.serve.scheduler`); a client that goes away cancels its row. Request checking
and response shapes are in `core.serve.openai_api`.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time

from tfchat.core.decode.limits import MAX_SERVE_ROWS
from tfchat.core.engine.text_stream import RowEvent
from tfchat.core.errors import TfchatError, describe_exception
from tfchat.core.serve.openai_api import (ApiError, GenerationRequest, LogprobShaper, ReplyStart, chunk_object,
                                          completion_object, finish_reason, new_id, parse_request, usage_chunk)
from tfchat.core.serve.request_body import BODY_READ_SECONDS, read_json_body
from tfchat.core.serve.scheduler import BatchScheduler, QueueFull
from tfchat.core.settings.weights_choice import weights_label
from tfchat.core.system.install_hint import install_command

# max_tokens above this is a 400: the window does not bound a generation (the book crops and goes on),
# so without a limit one request could hold a row for good.
DEFAULT_MAX_TOKENS_LIMIT = 32768
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1], as URLs write it
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, allow_no_key: bool) -> str | None:
    """Refuse to serve a non-loopback address without a key; a warning when the user insists."""
    if api_key or is_loopback(host):
        return None
    if not allow_no_key:
        raise TfchatError(f"--host {host} is reachable from other machines: give --api-key KEY (or "
                          "--allow-no-key to serve it open anyway)")
    return f"warning: serving {host} without an API key: anyone who can reach it can use the model"


class Api:
    """The routes, over one engine and its scheduler."""

    def __init__(self, engine, model_name: str, api_key: str | None = None, max_rows: int = MAX_SERVE_ROWS,
                 max_queue: int = 64, max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT,
                 request_timeout: float | None = None, body_read_seconds: float = BODY_READ_SECONDS):
        self.engine = engine
        self.model_name = model_name
        self.api_key = api_key
        self.max_tokens_limit = max_tokens_limit
        self.request_timeout = request_timeout  # seconds a request may generate for; None: no cap
        self.body_read_seconds = body_read_seconds
        self.scheduler = BatchScheduler(engine, max_rows=max_rows, max_queue=max_queue)
        self.shutting_down = False  # set on Ctrl+C, SIGTERM or a hangup: open requests end as "abort"
        self.created = int(time.time())

    def app(self):
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.middleware import Middleware
        from starlette.routing import Route

        async def http_error(request, exc: HTTPException):
            kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
            return _error(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", kind))

        routes = [Route("/v1/models", self.models, methods=["GET"]),
                  Route("/v1/models/{name:path}", self.model, methods=["GET"]),
                  Route("/v1/completions", self.completions, methods=["POST"]),
                  Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                  Route("/tfchat/load", self.load, methods=["GET"])]
        @contextlib.asynccontextmanager
        async def lifespan(app):
            yield
            self.scheduler.close()

        return Starlette(routes=routes, middleware=[Middleware(_KeyCheck, api_key=self.api_key)],
                         exception_handlers={HTTPException: http_error}, lifespan=lifespan)

    # ----- routes ---------------------------------------------------------------------------
    def _model_entry(self) -> dict:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "tfchat",
                "context_length": self.engine.config.context_length, "max_model_len": self.engine.config.context_length,
                "parameters": self.engine.parameter_count}  # tfchat's own field: the app's inspector shows it

    async def models(self, request):
        return _json({"object": "list", "data": [self._model_entry()]})

    async def model(self, request):
        if request.path_params["name"] != self.model_name:
            return _error(_unknown_model(request.path_params["name"], self.model_name))
        return _json(self._model_entry())

    async def load(self, request):
        return _json(self.scheduler.occupancy())

    async def completions(self, request):
        return await self._generate(request, chat=False)

    async def chat_completions(self, request):
        return await self._generate(request, chat=True)

    async def _generate(self, request, chat: bool):
        """A request's answer, whatever it sent: a client gone while sending gets nothing, and a bug in
        tfchat is one line in the log and OpenAI's error object, never a traceback or a plain 500."""
        from starlette.requests import ClientDisconnect

        try:
            return await self._generate_checked(request, chat)
        except ClientDisconnect:
            return _json({}, status=499)  # nobody is there to read it
        except Exception as exc:  # noqa: BLE001
            print(f"tfchat serve: a request failed: {describe_exception(exc)}", file=sys.stderr, flush=True)
            return _error(ApiError(500, f"tfchat failed on this request: {describe_exception(exc)}", "server_error"))

    def shut_down(self) -> None:
        """Open requests end at the next step with what they have, finish_reason "abort"."""
        self.shutting_down = True
        self.scheduler.cancel_all()

    def _ended_stats(self, stats):
        return dataclasses.replace(stats, finish_reason="abort") if self.shutting_down and stats.finish_reason == "stopped" else stats

    async def _generate_checked(self, request, chat: bool):
        if self.shutting_down:
            return _error(ApiError(503, "the server is shutting down", "server_error", code="server_shutting_down"))
        try:
            body = await read_json_body(request, self.body_read_seconds)
            parsed = parse_request(body, chat, self.engine.config.embedding_rows, self.max_tokens_limit)
            if parsed.model not in (None, self.model_name):
                raise _unknown_model(parsed.model, self.model_name)
            prompt_ids = parsed.prompt_ids if parsed.prompt_ids is not None else self._encode(parsed)
            updates: asyncio.Queue[RowEvent] = asyncio.Queue()
            loop = asyncio.get_running_loop()
            cancel = threading.Event()
            self.scheduler.submit(prompt_ids, parsed.params, lambda u: loop.call_soon_threadsafe(updates.put_nowait, u),
                                  _steps_to_record(parsed), cancel)
            if self.request_timeout:  # the row ends with what it has, finish_reason "length"
                loop.call_later(self.request_timeout, cancel.set)
        except ApiError as exc:
            return _error(exc)
        except QueueFull as exc:
            return _error(ApiError(503, str(exc), "server_error", code="queue_full"))
        except TfchatError as exc:
            return _error(ApiError(400, str(exc), param="prompt"))
        if parsed.stream:
            return _stream(self._events(parsed, prompt_ids, updates, cancel))
        return await self._whole(request, parsed, prompt_ids, updates, cancel)

    def _encode(self, parsed: GenerationRequest) -> list[int]:
        ids = self.engine.encode(parsed.prompt)
        if not ids:
            raise ApiError(400, "prompt: the prompt encodes to no tokens", param="prompt")
        return ids

    async def _whole(self, request, parsed: GenerationRequest, prompt_ids, updates, cancel):
        """A non-streamed answer; a client that disconnects while it waits cancels its row at the next step."""
        text, steps, start = "", [], ReplyStart(parsed.chat)
        watcher = asyncio.create_task(_cancel_when_gone(request, cancel))
        try:
            while True:
                update = await updates.get()
                if update.error:
                    return _error(ApiError(500, update.error, "server_error"))
                text += start.take(update.piece)
                steps += update.steps
                if update.stats is not None:
                    break
        finally:
            watcher.cancel()
        if cancel.is_set() and watcher.done() and not watcher.cancelled():
            return _json({}, status=499)  # the client is gone: nobody reads it
        shaper = LogprobShaper(self.engine.encoding, parsed)
        if parsed.echo:
            text = self._prompt_text(parsed, prompt_ids) + text
        return _json(completion_object(parsed, self.model_name, new_id(parsed.chat), text, shaper.shape(steps),
                                       self._ended_stats(update.stats)))

    def _prompt_text(self, parsed: GenerationRequest, prompt_ids: list[int]) -> str:
        """What `echo` repeats: the prompt as sent, or the text of its token ids."""
        return parsed.prompt if parsed.prompt is not None else self.engine.encoding.decode(prompt_ids)

    async def _events(self, parsed: GenerationRequest, prompt_ids, updates, cancel):
        """Server-sent events in OpenAI's chunk format; a client gone stops the generator, which cancels the row."""
        response_id, shaper, first = new_id(parsed.chat), LogprobShaper(self.engine.encoding, parsed), True
        start = ReplyStart(parsed.chat)
        try:
            if parsed.echo:
                yield _event(chunk_object(parsed, self.model_name, response_id, self._prompt_text(parsed, prompt_ids),
                                          None, None, first))
                first = False
            while True:
                update = await updates.get()
                if update.error:
                    yield _event(ApiError(500, update.error, "server_error").body())
                    break
                if update.stats is not None:
                    update.stats = self._ended_stats(update.stats)
                reason = finish_reason(update.stats)
                piece = start.take(update.piece)
                if piece or update.steps or reason or first:
                    yield _event(chunk_object(parsed, self.model_name, response_id, piece,
                                              shaper.shape(update.steps) if update.steps else None, reason, first))
                    first = False
                if update.stats is not None:
                    if parsed.include_usage:
                        yield _event(usage_chunk(parsed, self.model_name, response_id, update.stats))
                    break
            yield "data: [DONE]\n\n"
        finally:
            cancel.set()  # a no-op once the row is done; a disconnect lands here too


class _KeyCheck:
    """With --api-key, every request needs `Authorization: Bearer KEY` (401 otherwise)."""

    def __init__(self, app, api_key: str | None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.api_key:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                response = _error(ApiError(401, "missing or wrong API key: send Authorization: Bearer KEY",
                                           "authentication_error", code="invalid_api_key"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _unknown_model(name: str, served: str) -> ApiError:
    return ApiError(404, f"model {name!r} is not served here; this server has {served!r}", "not_found_error",
                    param="model", code="model_not_found")


async def _cancel_when_gone(request, cancel: threading.Event) -> None:
    """Set `cancel` when the client disconnects. Its body is read by now, so the next message
    is the disconnect: waited for, not polled, so a row that updates every step is still seen to."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return


def _json(content: dict, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(content, status_code=status)


def _steps_to_record(parsed) -> int:
    """Alternatives the engine records per token: `logprobs: 0` still wants the chosen token's own
    log-probability, which is recorded only alongside at least one alternative."""
    return max(parsed.logprobs, 1) if parsed.want_logprobs else 0


def _error(error: ApiError):
    return _json(error.body(), status=error.status)


def _event(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _stream(events):
    from starlette.responses import StreamingResponse

    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _check_port(host: str, port: int) -> None:
    """A port taken, or an address not ours, as one line before the model loads."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TfchatError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TfchatError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run_server(model_arg: str | None, device: str, host: str, port: int, api_key: str | None,
               allow_no_key: bool, max_rows: int, max_queue: int, max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT,
               request_timeout: float | None = None, read_timeout: float | None = None,
               weights: str = "exact") -> int:
    """Load the model, then serve until Ctrl+C or SIGTERM."""
    try:
        import uvicorn
    except ImportError:
        raise TfchatError(f"tfchat serve needs Starlette and uvicorn: {install_command('serve')}") from None
    from tfchat.core.engine.in_process import Engine
    from tfchat.core.serve.read_deadlines import with_header_deadline
    from tfchat.core.system.paths import resolve_model_path

    if os.environ.get("TFCHAT_EXIT_WITH_PARENT"):  # started by a tool (bench --serve, tests) that may be killed
        from tfchat.core.system.lifecycle import exit_when_orphaned

        exit_when_orphaned()
    api_key = api_key or os.environ.get("TFCHAT_API_KEY") or None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1] as a URL writes it
    warning = check_exposure(host, api_key, allow_no_key)
    if warning:
        print(f"tfchat: {warning}", file=sys.stderr)
    _check_port(host, port)
    path = resolve_model_path(model_arg)
    engine = Engine.load(path, device, weights)
    api = Api(engine, path.name, api_key, max_rows, max_queue, max_tokens_limit, request_timeout,
              body_read_seconds=read_timeout or BODY_READ_SECONDS)
    weights_note = f", {weights_label(weights)}" if weights != "exact" else ""
    print(f"tfchat serve: {path} as {path.name!r} on http://{host}:{port}/v1 ({engine.device}{weights_note}; "
          "ctrl+c stops)",
          file=sys.stderr, flush=True)
    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # First end the open requests (each at its next step, with what it has): uvicorn then finds
            # their connections done instead of cancelling them mid-answer after its grace period.
            api.shut_down()
            super().handle_exit(sig, frame)

    # limit_concurrency bounds open connections (beyond it uvicorn answers 503 at once), and each request's
    # headers have a deadline (core.serve.read_deadlines), so clients that open connections and trickle their
    # headers cannot take every file descriptor.
    server = Server(uvicorn.Config(api.app(), host=host, port=port, log_level="warning",
                                   http=with_header_deadline(read_timeout), timeout_graceful_shutdown=2,
                                   limit_concurrency=max_rows + max_queue + 64))
    # uvicorn ends gracefully on SIGINT and SIGTERM; a dropped SSH link (SIGHUP) ends it the same way.
    hung_up = []

    def hangup(*_) -> None:
        hung_up.append(True)
        server.handle_exit(signal.SIGINT, None)

    signal.signal(signal.SIGHUP, hangup)
    code = 0
    try:
        server.run()
    except SystemExit as exc:  # uvicorn raises the signal it caught again once it has shut down
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    finally:
        code = 128 + signal.SIGHUP if hung_up else code
        api.scheduler.close()
        engine.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Everything is closed: leave without the interpreter's teardown, which can abort
        # ("terminate called without an active exception") while torch's threads wind down.
        os._exit(code)
