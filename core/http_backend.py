"""Any OpenAI-compatible server as tfchat's engine: `tfchat --endpoint URL`.

The same surface as `Engine` and `EngineProcess` (`core.backend`), spoken over
HTTP with the standard library: each generation is a streamed `/v1/completions`
request, stopped by closing it (a server cancels a request whose client is
gone). Presets map onto the request's fields; the samplers OpenAI's API lacks
(top_k, min_p, repetition_penalty) are sent only to servers known to take them,
and a generation says which it could not send (`notice`).
"""
from __future__ import annotations

import json
import math
import queue
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

from core.errors import PromptError, TfchatError
from core.openai_api import TOKEN_ID_PREFIX
from core.sampling import SamplingParams
from core.stats import GenerationStats, RowEvent, measured_stats
from core.tokenizer import IncrementalDecoder, encode_prompt, load_encoding, token_text
from core.trace import Alternative, StepInfo, check_top_logprobs

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120  # between two streamed chunks: a long prefill on a busy server
# Which extra sampling fields each kind of server takes, by the name it takes them under (`owned_by`).
EXTRA_FIELDS = {
    "tfchat": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "llamacpp": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
}
OFF_VALUES = {"top_k": (None, 0), "min_p": (0.0,), "repetition_penalty": (1.0,)}
# Servers that take prompts as token ids and can spell tokens as ids in logprobs.
TOKEN_SERVERS = {"tfchat", "vllm"}


class HttpBackend:
    def __init__(self, endpoint: str, api_key: str | None, model: str, entry: dict):
        self.endpoint = endpoint
        self.api_key = api_key
        self.model_name = model
        self.flavour = str(entry.get("owned_by", "")).lower()
        self.encoding = load_encoding()
        window = entry.get("context_length") or entry.get("max_model_len") or 0
        self.config = SimpleNamespace(context_length=int(window), vocab_size=self.encoding.n_vocab,
                                      embedding_rows=self.encoding.n_vocab)
        self.device = f"{self.flavour or 'remote'} server"
        self.parameter_count = 0
        self.display_name = f"{model} @ {endpoint}"

    @classmethod
    def connect(cls, endpoint: str, api_key: str | None = None, model: str | None = None) -> "HttpBackend":
        """Ask the server for its models; one clear line if it cannot be reached or used."""
        endpoint = endpoint.rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise TfchatError(f"--endpoint {endpoint}: give a URL such as http://127.0.0.1:8000/v1")
        listing = _request(endpoint, api_key, "/models", None, CONNECT_TIMEOUT_S)
        with listing:
            try:
                models = json.loads(listing.read()).get("data") or []
            except (ValueError, AttributeError):
                raise TfchatError(f"{endpoint}/models: not an OpenAI-compatible answer") from None
        names = [m.get("id") for m in models if isinstance(m, dict)]
        if model is None and not names:
            raise TfchatError(f"{endpoint}: the server lists no models; name one with --remote-model")
        chosen = model or names[0]
        if model is not None and names and model not in names:
            raise TfchatError(f"{endpoint}: no model {model!r} there; it has {', '.join(map(str, names))}")
        entry = next((m for m in models if m.get("id") == chosen), {})
        return cls(endpoint, api_key, chosen, entry)

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
            response = _request(self._backend.endpoint, self._backend.api_key, "/completions", self._body,
                                READ_TIMEOUT_S)
            with response:
                for chunk in _events(response, self._cancel):
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        piece = choice.get("text") or ""
                        self.steps += _steps(choice.get("logprobs"))
                        if piece:
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


def _events(response, cancel):
    """The JSON objects of a server-sent event stream, until [DONE], the end, or `cancel`."""
    while True:
        if cancel is not None and cancel.is_set():
            return  # closing the response tells the server to stop
        try:
            line = response.readline()
        except (socket.timeout, OSError) as exc:
            raise TfchatError(f"the server stopped answering ({exc})") from None
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise TfchatError("the server sent something that is not JSON in its stream") from None
        if "error" in chunk:
            raise TfchatError(f"the server failed: {chunk['error'].get('message', chunk['error'])}")
        yield chunk


def _steps(logprobs: dict | None) -> list[StepInfo]:
    """Completions logprobs with tokens spelled as ids: step information without the sampler's side
    (a server reports the model's logprobs only: those are NaN here, and the views say so)."""
    if not logprobs or not logprobs.get("tokens"):
        return []
    steps = []
    for token, logprob, top in zip(logprobs["tokens"], logprobs.get("token_logprobs") or [],
                                   logprobs.get("top_logprobs") or []):
        if not str(token).startswith(TOKEN_ID_PREFIX):
            return []  # tokens as text: their ids are not known, so no per-token view
        alternatives = sorted(((int(name[len(TOKEN_ID_PREFIX):]), value) for name, value in (top or {}).items()
                               if str(name).startswith(TOKEN_ID_PREFIX)), key=lambda a: -a[1])
        steps.append(StepInfo(int(token[len(TOKEN_ID_PREFIX):]), float(logprob), math.nan, math.nan,
                              tuple(Alternative(i, float(v), math.nan) for i, v in alternatives)))
    return steps
