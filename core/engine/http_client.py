"""Any OpenAI-compatible server as tfchat's engine: `tfchat --endpoint URL`.

The same surface as `Engine` and `EngineProcess` (`core.engine.backend`), spoken over
HTTP with the standard library: each generation is a streamed `/v1/completions`
request, stopped by closing it (a server cancels a request whose client is
gone). Presets map onto the request's fields; the samplers OpenAI's API lacks
(top_k, min_p, repetition_penalty) are sent only to servers known to take them,
and a generation says which it could not send (`notice`).

A server is untrusted input: every answer is checked at this boundary (`ServerAnswerError`,
one line saying what the server did wrong), a stream is cut at the length asked for, and a
server that sends nothing but keep-alives for `timeout` seconds is given up on.
"""
from __future__ import annotations

import json
import math
import queue
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

from core.errors import PromptError, TfchatError
from core.settings.sampling_params import SamplingParams
from core.engine.stats import GenerationStats, RowEvent, measured_stats
from core.engine.tokenizer import TOKEN_ID_PREFIX, IncrementalDecoder, encode_prompt, load_encoding, token_text
from core.decode.step_info import Alternative, StepInfo, check_top_logprobs

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120  # default between two streamed tokens: a long prefill on a busy server (--timeout)
MAX_WINDOW = 1 << 24  # a context_length beyond this is not a window any server has
_TOKEN_ID = re.compile(re.escape(TOKEN_ID_PREFIX) + r"(\d{1,9})")
# Which extra sampling fields each kind of server takes, by the name it takes them under (`owned_by`).
EXTRA_FIELDS = {
    "tfchat": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "llamacpp": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
}
OFF_VALUES = {"top_k": (None, 0), "min_p": (0.0,), "repetition_penalty": (1.0,)}
# Servers that take prompts as token ids and can spell tokens as ids in logprobs.
TOKEN_SERVERS = {"tfchat", "vllm"}


class ServerAnswerError(TfchatError):
    """An answer that is not what OpenAI's API says it is: the server's fault, said in one line."""


def _preview(value) -> str:
    return json.dumps(value)[:60] if not isinstance(value, bytes) else repr(value[:60])


class HttpBackend:
    def __init__(self, endpoint: str, api_key: str | None, model: str, entry: dict, timeout: float = READ_TIMEOUT_S):
        self.endpoint = endpoint
        self.api_key = api_key
        self.model_name = model
        self.timeout = timeout
        self.flavour = str(entry.get("owned_by", "")).lower()
        self.encoding = load_encoding()
        window = _window(endpoint, entry)
        self.config = SimpleNamespace(context_length=window, vocab_size=self.encoding.n_vocab,
                                      embedding_rows=self.encoding.n_vocab)
        self.device = f"{self.flavour or 'remote'} server"
        self.parameter_count = 0
        self.display_name = f"{model} @ {endpoint}"

    @classmethod
    def connect(cls, endpoint: str, api_key: str | None = None, model: str | None = None,
                timeout: float | None = None) -> "HttpBackend":
        """Ask the server for its models; one clear line if it cannot be reached or used."""
        endpoint = endpoint.rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise TfchatError(f"--endpoint {endpoint}: give a URL such as http://127.0.0.1:8000/v1")
        timeout = READ_TIMEOUT_S if timeout is None else timeout
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 86400):
            raise TfchatError(f"--timeout {timeout}: give seconds, above 0 and at most 86400")
        listing = _request(endpoint, api_key, "/models", None, min(CONNECT_TIMEOUT_S, timeout))
        with listing:
            try:
                answer = json.loads(listing.read())
            except (ValueError, OSError):
                raise ServerAnswerError(f"{endpoint}/models: not an OpenAI-compatible answer (not JSON)") from None
        models = _model_list(endpoint, answer)
        names = [m["id"] for m in models]
        if model is None and not names:
            raise TfchatError(f"{endpoint}: the server lists no models; name one with --remote-model")
        chosen = model or names[0]
        if model is not None and names and model not in names:
            raise TfchatError(f"{endpoint}: no model {model!r} there; it has {', '.join(map(str, names))}")
        entry = next((m for m in models if m["id"] == chosen), {})
        return cls(endpoint, api_key, chosen, entry, timeout)

    # ----- the backend surface ----------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return encode_prompt(self.encoding, text, self.encoding.n_vocab)

    def generate(self, context: str, params: SamplingParams, cancel: threading.Event | None = None,
                 top_logprobs: int = 0, forced_ids: tuple[int, ...] = ()) -> "HttpGeneration":
        check_top_logprobs(top_logprobs)
        if not context and not forced_ids:
            raise PromptError("the prompt is empty: the model needs at least one token to continue")
        if forced_ids and self.flavour not in TOKEN_SERVERS:
            raise TfchatError("branching from a token needs a server that takes prompts as token ids "
                              "(tfchat serve, vLLM)")
        return HttpGeneration(self, context, params, cancel, top_logprobs, tuple(forced_ids))

    def generate_batch(self, contexts: list[str], params: list[SamplingParams], cancel=None,
                       top_logprobs: int = 0) -> "HttpBatch":
        """Concurrent requests, one a row: the server batches them (tfchat serve and vLLM do)."""
        return HttpBatch([self.generate(c, p, cancel, top_logprobs) for c, p in zip(contexts, params)])

    def logit_lens(self, context: str, forced_ids: tuple[int, ...] = (), top_n: int = 5):
        raise TfchatError("the logit lens needs the model's layers: a server does not expose them")

    def describe(self) -> dict:
        return {"file": f"{self.model_name} on {self.endpoint}", "device": f"a {self.flavour or 'remote'} server",
                "h_params": {"context_length": self.config.context_length or "not reported"}}

    def token_text(self, token: int) -> tuple[str, list[int]]:
        return token_text(self.encoding, token)

    def close(self) -> None:
        pass

    # ----- requests ---------------------------------------------------------------------------
    def request_body(self, prompt, params: SamplingParams, seed: int, top_logprobs: int) -> tuple[dict, list[str]]:
        """The completions request for `params`, and the preset's samplers this server cannot take."""
        body = {"model": self.model_name, "prompt": prompt, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": seed, "stream": True,
                "stream_options": {"include_usage": True}}
        if params.stop:
            body["stop"] = list(params.stop)
        names, unsent = EXTRA_FIELDS.get(self.flavour, {}), []
        for key in ("top_k", "min_p", "repetition_penalty"):
            value = getattr(params, key)
            if value in OFF_VALUES[key]:
                continue
            if key in names:
                body[names[key]] = value
            else:
                unsent.append(key)
        if top_logprobs and self.flavour in TOKEN_SERVERS:
            body["logprobs"] = top_logprobs
            body["return_tokens_as_token_ids"] = True
        return body, unsent


class HttpGeneration:
    """Iterate for text pieces; `text`, `steps` and, at the end, `stats` as `Generation` has them."""

    def __init__(self, backend: HttpBackend, context: str, params: SamplingParams, cancel, top_logprobs: int,
                 forced_ids: tuple[int, ...]):
        self._backend = backend
        self._cancel = cancel
        self._forced_ids = forced_ids
        self._limit = params.max_new_tokens
        self.seed = params.seed if params.seed is not None else secrets.randbits(31)  # servers take 32-bit seeds
        prompt = backend.encode(context) + list(forced_ids) if forced_ids else context
        self._prompt_tokens_guess = len(backend.encode(context)) + len(forced_ids)
        self._body, unsent = backend.request_body(prompt, params, self.seed, top_logprobs)
        self.notice = (f"{backend.endpoint} does not take {', '.join(unsent)}: not sent, the server's defaults "
                       "apply" if unsent else None)
        self.text = ""
        self.token_ids: list[int] = []
        self.steps: list[StepInfo] = []
        self.stats: GenerationStats | None = None

    def __iter__(self):
        start, first_at, reason, usage = time.perf_counter(), None, "stopped", None
        try:
            if self._forced_ids:  # a branch: the chosen tokens' text first, as the local engine streams it
                decoder = IncrementalDecoder(self._backend.encoding)
                forced = "".join(decoder.push(t) for t in self._forced_ids)
                self.text += forced
                yield forced
            url = self._backend.endpoint + "/completions"
            response = _request(self._backend.endpoint, self._backend.api_key, "/completions", self._body,
                                self._backend.timeout)
            with response:
                _require_event_stream(url, response)
                pieces = 0
                for chunk in _events(response, self._cancel, self._backend.timeout):
                    choices, chunk_usage = _chunk_parts(chunk)
                    usage = chunk_usage or usage
                    for choice in choices:
                        piece = choice.get("text") or ""
                        self.steps += _steps(choice.get("logprobs"))
                        if piece:
                            pieces += 1
                            if pieces > self._limit:  # each streamed piece is at least one token
                                raise ServerAnswerError(f"{url}: the server kept streaming past the {self._limit} "
                                                        "tokens asked for; stopped there")
                            first_at = first_at or time.perf_counter()
                            self.text += piece
                            yield piece
                        if choice.get("finish_reason"):
                            reason = "stop" if choice["finish_reason"] == "stop" else "length"
        finally:
            new = (usage or {}).get("completion_tokens") or len(self.steps) or (1 if self.text else 0)
            prompt_tokens = (usage or {}).get("prompt_tokens") or self._prompt_tokens_guess
            self.stats = measured_stats(prompt_tokens, new, start, first_at, time.perf_counter(),
                                        self._backend.endpoint, reason, self.seed)


class HttpBatch:
    """Several HttpGenerations at once, as `BatchGeneration`: iterate for `RowEvent`s."""

    def __init__(self, generations: list[HttpGeneration]):
        self._generations = generations
        self.texts = [""] * len(generations)
        self.stats: list[GenerationStats | None] = [None] * len(generations)

    def __iter__(self):
        events: queue.SimpleQueue = queue.SimpleQueue()

        def row(index: int, generation: HttpGeneration) -> None:
            try:
                for piece in generation:
                    events.put((index, piece, None))
                events.put((index, "", None))
            except Exception as exc:  # noqa: BLE001 - raised on the iterating thread below
                events.put((index, "", exc))

        threads = [threading.Thread(target=row, args=(i, g), daemon=True, name="tfchat-http-row")
                   for i, g in enumerate(self._generations)]
        for thread in threads:
            thread.start()
        running, failure = len(threads), None
        while running:
            index, piece, error = events.get()
            generation = self._generations[index]
            if error is not None:
                failure, running = failure or error, running - 1
                continue
            if piece:
                self.texts[index] += piece
                yield RowEvent(index, piece)
            elif generation.stats is not None and self.stats[index] is None:
                running -= 1
                self.stats[index] = generation.stats
                yield RowEvent(index, "", generation.stats)
        if failure is not None:
            raise failure


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


class _RedirectsThatKeepTheKey(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only where the API key may go with it: a GET to the same scheme, host and port.

    urllib would resend every header, the key included, to any origin, and turn a redirected POST
    into a GET without its body; both are refused with one line instead.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urljoin(req.full_url, newurl)
        if req.get_method() != "GET":
            raise TfchatError(f"{req.full_url}: the server redirects (HTTP {code}) to {target}; a request with a "
                              "body is not resent elsewhere: give --endpoint the URL it should reach")
        if _origin(target) != _origin(req.full_url):
            raise TfchatError(f"{req.full_url}: the server redirects (HTTP {code}) to another origin, {target}; "
                              "not followed, so the API key is not sent there: give --endpoint that URL if you trust it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_RedirectsThatKeepTheKey)


def _request(endpoint: str, api_key: str | None, path: str, body: dict | None, timeout: float):
    """An open response, or one line saying why there is none."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(endpoint + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        return _OPENER.open(request, timeout=timeout)  # the user's own endpoint
    except urllib.error.HTTPError as exc:
        raise TfchatError(_http_problem(endpoint + path, exc)) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TfchatError(f"cannot reach {endpoint}: {reason}") from None


def _http_problem(url: str, exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read()).get("error", {}).get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    if exc.code == 401:
        return f"{url}: the server refused the API key (HTTP 401); give it with --api-key KEY"
    return f"{url}: {message or exc.reason} (HTTP {exc.code})"


def _model_list(endpoint: str, answer) -> list[dict]:
    """The models of a `/models` answer, each a dict with a string `id`; one line if it is not that."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise ServerAnswerError(f"{endpoint}/models: not an OpenAI model list (no 'data' list in {_preview(answer)})")
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ServerAnswerError(f"{endpoint}/models: {_preview(entry)} in 'data' is not a model with an 'id'")
    return data


def _window(endpoint: str, entry: dict) -> int:
    """The model's context window as the server reports it; 0 when it does not say."""
    value = entry.get("context_length") or entry.get("max_model_len") or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WINDOW:
        raise ServerAnswerError(f"{endpoint}/models: context_length {_preview(value)} is not a window size")
    return value


def _require_event_stream(url: str, response) -> None:
    kind = response.headers.get("Content-Type", "")
    if "text/event-stream" not in kind:
        raise ServerAnswerError(f"{url}: the server answered a streamed request with {kind or 'no content type'}, "
                                "not an event stream (text/event-stream)")


def _chunk_parts(chunk) -> tuple[list[dict], dict | None]:
    """A streamed completion chunk's choices and usage, checked; one line for anything else."""
    if not isinstance(chunk, dict):
        raise ServerAnswerError(f"the server streamed {_preview(chunk)}, not a completion chunk")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise TfchatError(f"the server failed: {str(message)[:200]}")
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise ServerAnswerError(f"the server streamed choices that are not a list: {_preview(choices)}")
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("text") or "", str):
            raise ServerAnswerError(f"the server streamed a choice that is not a completion: {_preview(choice)}")
    usage = chunk.get("usage")
    if usage is not None and not _is_usage(usage):
        raise ServerAnswerError(f"the server reported a usage that is not token counts: {_preview(usage)}")
    return choices, usage


def _is_usage(usage) -> bool:
    if not isinstance(usage, dict):
        return False
    counts = [usage[k] for k in ("prompt_tokens", "completion_tokens") if usage.get(k) is not None]
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)


def _events(response, cancel, timeout: float = READ_TIMEOUT_S):
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


def _steps(logprobs: dict | None) -> list[StepInfo]:
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
            alternatives = sorted(((_token_id(name), _number(value)) for name, value in (top or {}).items()
                                   if str(name).startswith(TOKEN_ID_PREFIX)), key=lambda a: -a[1])
            steps.append(StepInfo(_token_id(token), _number(logprob), math.nan, math.nan,
                                  tuple(Alternative(i, v, math.nan) for i, v in alternatives)))
        return steps
    except (AttributeError, TypeError):
        raise ServerAnswerError(f"the server's logprobs are not in the completions shape: {_preview(logprobs)}") from None


def _token_id(name) -> int:
    match = _TOKEN_ID.fullmatch(str(name))
    if match is None:
        raise ServerAnswerError(f"the server spelled a token {_preview(name)}, not {TOKEN_ID_PREFIX}N")
    return int(match.group(1))


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServerAnswerError(f"the server reported a logprob of {_preview(value)}, not a number")
    return float(value)
