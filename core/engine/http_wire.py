"""What an OpenAI-compatible server sends, read as untrusted input: requests that keep the API key
to its origin, and every answer checked at this boundary (`ServerAnswerError`, one line saying
what the server did wrong)."""
from __future__ import annotations

import json
import math
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from tfchat.core.decode.step_info import Alternative, StepInfo
from tfchat.core.engine.tokenizer import TOKEN_ID_PREFIX
from tfchat.core.errors import TfchatError

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120  # default between two streamed tokens: a long prefill on a busy server (--timeout)
MAX_WINDOW = 1 << 24  # a context_length beyond this is not a window any server has
TOKEN_ID = re.compile(re.escape(TOKEN_ID_PREFIX) + r"(\d{1,9})")
# A server answering these is there but not serving yet (starting, restarting, behind a proxy).
NOT_YET_SERVING = (502, 503, 504)


class ServerAnswerError(TfchatError):
    """An answer that is not what OpenAI's API says it is: the server's fault, said in one line."""


class UnreachableError(TfchatError):
    """No answer at all (refused, reset, timed out) or a server not serving yet: one that may be back
    later, so the app tries again, where a wrong key or a wrong answer would fail the same way again."""


def preview(value) -> str:
    return json.dumps(value)[:60] if not isinstance(value, bytes) else repr(value[:60])


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


class RedirectsThatKeepTheKey(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only where the API key may go with it: a GET to the same scheme, host and port.

    urllib would resend every header, the key included, to any origin, and turn a redirected POST
    into a GET without its body; both are refused with one line instead.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urljoin(req.full_url, newurl)
        if req.get_method() != "GET":
            raise TfchatError(f"{req.full_url}: the server redirects (HTTP {code}) to {target}; a request with a "
                              "body is not resent elsewhere: give --endpoint the URL it should reach")
        if origin(target) != origin(req.full_url):
            raise TfchatError(f"{req.full_url}: the server redirects (HTTP {code}) to another origin, {target}; "
                              "not followed, so the API key is not sent there: give --endpoint that URL if you trust it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


OPENER = urllib.request.build_opener(RedirectsThatKeepTheKey)


def request(endpoint: str, api_key: str | None, path: str, body: dict | None, timeout: float):
    """An open response, or one line saying why there is none."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(endpoint + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        return OPENER.open(request, timeout=timeout)  # the user's own endpoint
    except urllib.error.HTTPError as exc:
        problem = http_problem(endpoint + path, exc)
        raise (UnreachableError if exc.code in NOT_YET_SERVING else TfchatError)(problem) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnreachableError(f"cannot reach {endpoint}: {reason}") from None


def http_problem(url: str, exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read()).get("error", {}).get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    if exc.code == 401:
        return f"{url}: the server refused the API key (HTTP 401); give it with --api-key KEY"
    return f"{url}: {message or exc.reason} (HTTP {exc.code})"


def model_list(endpoint: str, answer) -> list[dict]:
    """The models of a `/models` answer, each a dict with a string `id`; one line if it is not that."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise ServerAnswerError(f"{endpoint}/models: not an OpenAI model list (no 'data' list in {preview(answer)})")
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ServerAnswerError(f"{endpoint}/models: {preview(entry)} in 'data' is not a model with an 'id'")
    return data


def window(endpoint: str, entry: dict) -> int:
    """The model's context window as the server reports it; 0 when it does not say."""
    value = entry.get("context_length") or entry.get("max_model_len") or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WINDOW:
        raise ServerAnswerError(f"{endpoint}/models: context_length {preview(value)} is not a window size")
    return value


def require_event_stream(url: str, response) -> None:
    kind = response.headers.get("Content-Type", "")
    if "text/event-stream" not in kind:
        raise ServerAnswerError(f"{url}: the server answered a streamed request with {kind or 'no content type'}, "
                                "not an event stream (text/event-stream)")


def chunk_parts(chunk) -> tuple[list[dict], dict | None]:
    """A streamed completion chunk's choices and usage, checked; one line for anything else."""
    if not isinstance(chunk, dict):
        raise ServerAnswerError(f"the server streamed {preview(chunk)}, not a completion chunk")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise TfchatError(f"the server failed: {str(message)[:200]}")
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise ServerAnswerError(f"the server streamed choices that are not a list: {preview(choices)}")
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("text") or "", str):
            raise ServerAnswerError(f"the server streamed a choice that is not a completion: {preview(choice)}")
    usage = chunk.get("usage")
    if usage is not None and not is_usage(usage):
        raise ServerAnswerError(f"the server reported a usage that is not token counts: {preview(usage)}")
    return choices, usage


def is_usage(usage) -> bool:
    if not isinstance(usage, dict):
        return False
    counts = [usage[k] for k in ("prompt_tokens", "completion_tokens") if usage.get(k) is not None]
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)


def events(response, cancel, timeout: float = READ_TIMEOUT_S):
    """The JSON values of a server-sent event stream, until [DONE], the end, or `cancel`.

    Comment lines (`:`) keep a connection alive but carry nothing: `timeout` seconds of only
    those, like `timeout` seconds of silence, end the stream with one line."""
    last_data = time.monotonic()
    while True:
        if cancel is not None and cancel.is_set():
            return  # closing the response tells the server to stop
        try:
            line = response.readline()
        except (socket.timeout, OSError):
            raise TfchatError(f"the server sent nothing for {timeout:g} s; gave up (--timeout sets how long)") from None
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            if time.monotonic() - last_data > timeout:
                raise TfchatError(f"the server sent only keep-alives for {timeout:g} s; gave up "
                                  "(--timeout sets how long)")
            continue
        last_data = time.monotonic()
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            yield json.loads(payload)
        except ValueError:
            raise ServerAnswerError("the server sent something that is not JSON in its stream") from None


def steps(logprobs: dict | None) -> list[StepInfo]:
    """Completions logprobs with tokens spelled as ids: step information without the sampler's side
    (a server reports the model's logprobs only: those are NaN here, and the views say so)."""
    if not logprobs:
        return []
    try:
        tokens, logprob_list = logprobs.get("tokens") or [], logprobs.get("token_logprobs") or []
        tops = logprobs.get("top_logprobs") or [{}] * len(tokens)
        steps = []
        for token, logprob, top in zip(tokens, logprob_list, tops):
            if not str(token).startswith(TOKEN_ID_PREFIX):
                return []  # tokens as text: their ids are not known, so no per-token view
            alternatives = sorted(((token_id(name), number(value)) for name, value in (top or {}).items()
                                   if str(name).startswith(TOKEN_ID_PREFIX)), key=lambda a: -a[1])
            steps.append(StepInfo(token_id(token), number(logprob), math.nan, math.nan,
                                  tuple(Alternative(i, v, math.nan) for i, v in alternatives)))
        return steps
    except (AttributeError, TypeError):
        raise ServerAnswerError(f"the server's logprobs are not in the completions shape: {preview(logprobs)}") from None


def token_id(name) -> int:
    match = TOKEN_ID.fullmatch(str(name))
    if match is None:
        raise ServerAnswerError(f"the server spelled a token {preview(name)}, not {TOKEN_ID_PREFIX}N")
    return int(match.group(1))


def number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServerAnswerError(f"the server reported a logprob of {preview(value)}, not a number")
    return float(value)
