"""Any OpenAI-compatible server as tfchat's engine: `tfchat --endpoint URL`.

The same surface as `Engine` and `EngineProcess` (`core.engine.backend`), spoken over
HTTP with the standard library: each generation is a streamed `/v1/completions`
request, stopped by closing it (a server cancels a request whose client is
gone). Presets map onto the request's fields; the samplers OpenAI's API lacks
(top_k, min_p, repetition_penalty) are sent only to servers known to take them,
and a generation says which it could not send (`notice`).

A server is untrusted input: every answer is checked at this boundary (`core.engine.http_wire`,
one line saying what the server did wrong), a stream is cut at the length asked for, and a
server that sends nothing but keep-alives for `timeout` seconds is given up on.
"""
from __future__ import annotations

import json
import queue
import threading

from tfchat.core.decode.step_info import StepInfo, check_top_logprobs
from tfchat.core.engine import http_wire as wire
from tfchat.core.engine.backend import ReportedShape
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.engine.text_stream import RowEvent, TextStream, drawn_seed
from tfchat.core.engine.tokenizer import encode_prompt, load_encoding
from tfchat.core.errors import PromptError, TfchatError
from tfchat.core.settings.sampling_params import MAX_NEW_TOKENS, SamplingParams

# Which extra sampling fields each kind of server takes, by the name it takes them under (`owned_by`).
EXTRA_FIELDS = {
    "tfchat": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
    "llamacpp": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
}
OFF_VALUES = {"top_k": (None, 0), "min_p": (0.0,), "repetition_penalty": (1.0,)}
# Servers that take prompts as token ids and can spell tokens as ids in logprobs.
TOKEN_SERVERS = {"tfchat", "vllm"}
# Servers that refuse a request running past the model's window instead of cropping as the book does.
WINDOW_BOUND_SERVERS = {"vllm"}


class HttpBackend:
    def __init__(self, endpoint: str, api_key: str | None, model: str, entry: dict,
                 timeout: float = wire.READ_TIMEOUT_S):
        self.endpoint = endpoint
        self.api_key = api_key
        self.model_name = model
        self.timeout = timeout
        self.flavour = str(entry.get("owned_by", "")).lower()
        self.encoding = load_encoding()
        window = wire.window(endpoint, entry)
        self.config = ReportedShape(context_length=window, vocab_size=self.encoding.n_vocab,
                                    embedding_rows=self.encoding.n_vocab)
        self.device = f"{self.flavour or 'remote'} server"
        self.entry = entry  # what the server says of the model: the inspector shows it
        reported = entry.get("parameters")  # tfchat serve's own field; other servers do not say
        self.parameter_count = reported if isinstance(reported, int) and 0 < reported < 1 << 50 else 0
        self.display_name = f"{model} @ {endpoint}"

    @classmethod
    def connect(cls, endpoint: str, api_key: str | None = None, model: str | None = None,
                timeout: float | None = None) -> "HttpBackend":
        """Ask the server for its models; one clear line if it cannot be reached or used."""
        endpoint = endpoint.rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise TfchatError(f"--endpoint {endpoint}: give a URL such as http://127.0.0.1:8000/v1")
        timeout = wire.READ_TIMEOUT_S if timeout is None else timeout
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 86400):
            raise TfchatError(f"--timeout {timeout}: give seconds, above 0 and at most 86400")
        listing = wire.request(endpoint, api_key, "/models", None, min(wire.CONNECT_TIMEOUT_S, timeout))
        with listing:
            try:
                answer = json.loads(listing.read())
            except (ValueError, OSError):
                raise wire.ServerAnswerError(f"{endpoint}/models: not an OpenAI-compatible answer (not JSON)") from None
        models = wire.model_list(endpoint, answer)
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

    def lens_spread(self, context: str, forced_ids: tuple[int, ...] = ()):
        raise TfchatError("the logit lens needs the model's layers: a server does not expose them")

    def attention(self, context: str, forced_ids: tuple[int, ...] = ()):
        raise TfchatError("the attention view needs the model's layers: a server does not expose them")

    def next_token(self, context: str, forced_ids: tuple[int, ...] = (), off=(), chosen: int | None = None):
        raise TfchatError("switching heads off needs the model's layers: a server does not expose them")

    def score(self, text: str, off=(), cancel=None):
        raise TfchatError("scoring a text needs the model's layers: run it where the model is (tfchat score)")

    def describe(self) -> dict:
        """What the server says of its model; the weights are there, not here."""
        created = self.entry.get("created")
        return {"server": self.endpoint, "file": f"{self.model_name} on {self.endpoint}", "model": self.model_name,
                "owned_by": str(self.entry.get("owned_by") or "not reported"),
                "created": created if isinstance(created, int) and not isinstance(created, bool) else None,
                "context_length": self.config.context_length, "parameter_count": self.parameter_count,
                "device": f"a {self.flavour or 'remote'} server"}

    def use_training_text(self, index) -> None:
        pass  # the server drafts as it does, if at all

    def close(self) -> None:
        pass

    # ----- requests ---------------------------------------------------------------------------
    def fitted_params(self, params: SamplingParams, prompt_tokens: int) -> tuple[SamplingParams, str | None]:
        """`params` with the new tokens capped to what the window holds after the prompt, on a server that
        would refuse the request otherwise (vLLM), and a notice saying so; a prompt that fills the window
        there is a PromptError."""
        window = self.config.context_length
        if self.flavour not in WINDOW_BOUND_SERVERS or not window:
            return params, None
        room = window - prompt_tokens
        if room <= 0:
            raise PromptError(f"the prompt is {prompt_tokens} tokens and {self.flavour} serves at most the model's "
                              f"window of {window}, without cropping as the book does: shorten it, or run the "
                              "model in tfchat")
        if params.token_limit is not None and params.token_limit <= room:
            return params, None
        notice = (f"{self.flavour} ends a text at the model's window of {window} tokens (it does not crop as the "
                  f"book does): {room} new tokens at most after this prompt")
        return params.with_changes(max_new_tokens=room), notice

    def request_body(self, prompt, params: SamplingParams, seed: int, top_logprobs: int) -> tuple[dict, list[str]]:
        """The completions request for `params`, and the preset's samplers this server cannot take."""
        body = {"model": self.model_name, "prompt": prompt, "max_tokens": params.token_limit,
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
        if params.window != "book":
            unsent.append("window")  # past its window a server crops as it does
        if top_logprobs and self.flavour in TOKEN_SERVERS:
            body["logprobs"] = top_logprobs
            body["return_tokens_as_token_ids"] = True
        if body["max_tokens"] is None:  # max_new_tokens 0, until stopped: the server's own limit applies
            del body["max_tokens"]
        return body, unsent


class HttpGeneration:
    """Iterate for text pieces; `text`, `steps` and, at the end, `stats` as `Generation` has them."""

    def __init__(self, backend: HttpBackend, context: str, params: SamplingParams, cancel, top_logprobs: int,
                 forced_ids: tuple[int, ...]):
        self._backend = backend
        self._cancel = cancel
        self._forced_ids = forced_ids
        context_ids = backend.encode(context)
        self._prompt_tokens_guess = len(context_ids)
        params, window_notice = backend.fitted_params(params, len(context_ids) + len(forced_ids))
        self._limit = params.token_limit if params.token_limit is not None else MAX_NEW_TOKENS
        self._params = params
        self.seed = drawn_seed(params, bits=31)  # servers take 32-bit seeds
        prompt = context_ids + list(forced_ids) if forced_ids else context
        self._body, unsent = backend.request_body(prompt, params, self.seed, top_logprobs)
        notices = [f"{backend.endpoint} does not take {', '.join(unsent)}: not sent, the server's defaults apply"
                   if unsent else None, window_notice]
        self.notice = "; ".join(n for n in notices if n) or None
        self.text = ""
        self.token_ids: list[int] = []
        self.steps: list[StepInfo] = []
        self.stats: GenerationStats | None = None

    def __iter__(self):
        # The server decodes and cuts at stop strings; the stream here keeps the text and the clock.
        stream = TextStream(self._backend.encoding, self._prompt_tokens_guess, self._params, self._backend.endpoint,
                            self.seed, window="server")
        reason, usage, pieces, forced = "stopped", None, 0, ""
        try:
            forced = stream.forced(self._forced_ids)  # a branch: the chosen tokens' text first, as locally
            if forced:
                self.text += forced
                yield forced
            url = self._backend.endpoint + "/completions"
            response = wire.request(self._backend.endpoint, self._backend.api_key, "/completions", self._body,
                                self._backend.timeout)
            with response:
                wire.require_event_stream(url, response)
                for chunk in wire.events(response, self._cancel, self._backend.timeout):
                    choices, chunk_usage = wire.chunk_parts(chunk)
                    usage = chunk_usage or usage
                    for choice in choices:
                        piece = choice.get("text") or ""
                        self.steps += wire.steps(choice.get("logprobs"))
                        if piece:
                            pieces += 1
                            if pieces > self._limit:  # each streamed piece is at least one token
                                raise wire.ServerAnswerError(f"{url}: the server kept streaming past the {self._limit} "
                                                        "tokens asked for; stopped there")
                            self.text += stream.push_text(piece)
                            yield piece
                        if choice.get("finish_reason"):
                            reason = "stop" if choice["finish_reason"] == "stop" else "length"
        finally:
            self.stats = stream.end(reason, new_tokens=self._new_tokens(usage, pieces, self.text[len(forced):]),
                                    prompt_tokens=(usage or {}).get("prompt_tokens"))[1]

    def _new_tokens(self, usage: dict | None, pieces: int, generated: str) -> int:
        """The server's count; without one (a stream stopped before its usage chunk), the tokens
        received: one per step where logprobs came, else the text's tokens in the model's own
        encoding (at least one per streamed piece)."""
        counted = (usage or {}).get("completion_tokens")
        if counted:
            return counted
        if self.steps:
            return len(self.steps)
        return max(pieces, len(self._backend.encoding.encode(generated, disallowed_special=())))


class HttpBatch:
    """Several HttpGenerations at once, as `BatchGeneration`: iterate for `RowEvent`s."""

    def __init__(self, generations: list[HttpGeneration]):
        self._generations = generations
        self.notices = [generation.notice for generation in generations]
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
