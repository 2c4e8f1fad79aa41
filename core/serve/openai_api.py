"""OpenAI's HTTP API as tfchat speaks it: requests checked into sampling parameters, results shaped
into OpenAI's objects. No HTTP here (`core.serve.server` serves it, `core.engine.http_client` is the client side).

The book's models continue text: a chat request's messages are joined with
`chat_prompt`'s plain template, and the reply ends where the model starts the
next "User:" turn.
"""
from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import dataclass
from functools import partial

from tfchat.core.decode.step_info import MAX_TOP_LOGPROBS, StepInfo
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.engine.tokenizer import TOKEN_ID_PREFIX, token_text
from tfchat.core.errors import PresetError
from tfchat.core.settings.presets import params_from_mapping
from tfchat.core.settings.sampling_params import SamplingParams

MAX_PROMPT_CHARS = 200_000  # a prompt beyond this is refused with 413, before it is tokenized
COMPLETION_DEFAULT_TOKENS = 16  # OpenAI's default for /v1/completions
CHAT_DEFAULT_TOKENS = 200  # the book's length
CHAT_ROLES = {"system": "", "developer": "", "user": "User: ", "assistant": "Assistant: ", "tool": "Tool: "}
CHAT_STOP = "\nUser:"


class ApiError(Exception):
    """An error as OpenAI reports it: status, one-line message, type, and the field at fault."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(param: str, message: str) -> ApiError:
    return ApiError(400, f"{param}: {message}", param=param)


@dataclass
class GenerationRequest:
    """What a completions or chat request asks for, checked."""
    chat: bool
    prompt: str | None  # text, or None when `prompt_ids` were given
    prompt_ids: list[int] | None
    params: SamplingParams
    stream: bool
    include_usage: bool
    logprobs: int  # alternatives per token; 0 with `want_logprobs` means the chosen token's only
    want_logprobs: bool
    echo: bool
    tokens_as_ids: bool
    model: str | None


def parse_request(body: object, chat: bool, vocab_size: int, max_tokens_limit: int | None = None) -> GenerationRequest:
    """A request body checked field by field; the first problem raises ApiError(400) naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model", "must be a string")
    prompt, prompt_ids = (chat_prompt(body.get("messages")), None) if chat else _prompt(body.get("prompt"), vocab_size)
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(413, f"prompt: {len(prompt)} characters, over the limit of {MAX_PROMPT_CHARS}",
                       param="prompt" if not chat else "messages", code="prompt_too_long")
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n != 1):
        raise bad("n", "only 1 choice per request is supported (send more requests: they are batched)")
    # Fields of OpenAI's API that tfchat does not implement: refused unless they ask for nothing,
    # so a client never believes they took effect.
    asks_nothing = {"best_of": lambda v: v is None or (type(v) is int and v == 1),
                    "logit_bias": lambda v: v is None or v == {}, "suffix": lambda v: v is None or v == ""}
    for name, inert in asks_nothing.items():
        if not inert(body.get(name)):
            raise bad(name, "not supported by tfchat serve")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise bad(name, "not supported; use repetition_penalty")
    default_tokens = CHAT_DEFAULT_TOKENS if chat else COMPLETION_DEFAULT_TOKENS
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) if chat else body.get("max_tokens")
    max_tokens = default_tokens if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad("max_tokens", f"must be a whole number of at least 1, got {max_tokens!r}")
    if max_tokens_limit is not None and max_tokens > max_tokens_limit:
        raise bad("max_tokens", f"{max_tokens} is over this server's limit of {max_tokens_limit} "
                                "(tfchat serve --max-tokens-limit)")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else ([] if stop is None else stop)
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad("stop", "must be a non-empty string or a list of them")
    for stop_text in stops:
        valid_text(stop_text, "stop")
    if chat:
        stops = [*stops, CHAT_STOP]
    values = {"max_new_tokens": max_tokens, "stop": stops}
    for name in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed"):
        if body.get(name) is not None:
            values[name] = body[name]
    for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
        if name in values and (isinstance(values[name], bool) or not isinstance(values[name], (int, float))):
            raise bad(name, f"must be a number, got {values[name]!r}")
    for name in ("top_k", "seed"):
        if name in values and (isinstance(values[name], bool) or not isinstance(values[name], int)):
            raise bad(name, f"must be a whole number, got {values[name]!r}")
    try:
        params = params_from_mapping(values, SamplingParams())
    except PresetError as exc:  # "key 'top_p': top_p must be in (0, 1], got 3"
        found = re.match(r"key '(\w+)': (.*)", str(exc))
        field, message = found.groups() if found else ("parameters", str(exc))
        if field == "max_new_tokens":
            field, message = "max_tokens", message.replace("max_new_tokens", "max_tokens")
        raise ApiError(400, message, param=field) from None
    want, top = _logprobs(body, chat)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise bad("stream_options", "must be an object")
    echo = bool(body.get("echo")) and not chat
    if echo and want:
        raise bad("echo", "echo with logprobs is not supported (the prompt's own logprobs are not computed)")
    return GenerationRequest(chat=chat, prompt=prompt, prompt_ids=prompt_ids, params=params,
                             stream=bool(body.get("stream")), include_usage=bool(stream_options.get("include_usage")),
                             logprobs=top, want_logprobs=want, echo=echo,
                             tokens_as_ids=bool(body.get("return_tokens_as_token_ids")), model=model)


def _prompt(prompt: object, vocab_size: int) -> tuple[str | None, list[int] | None]:
    """A completions prompt: a string, a list of one string, or token ids (a list of ints, or a list of one)."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise bad("prompt", "is empty: the model needs at least one token to continue")
        return valid_text(prompt, "prompt"), None
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        outside = [t for t in prompt if not 0 <= t < vocab_size]
        if outside:
            raise bad("prompt", f"token {outside[0]} is outside the model's vocabulary of {vocab_size}")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ApiError(413, f"prompt: {len(prompt)} tokens, over the limit", param="prompt",
                           code="prompt_too_long")
        return None, list(prompt)
    if isinstance(prompt, list) and len(prompt) > 1:
        raise bad("prompt", "one prompt per request (send more requests: they are batched)")
    raise bad("prompt", "must be a non-empty string or a list of token ids")


def chat_prompt(messages: object) -> str:
    """The plain template: system text first, then "User: …" and "Assistant: …" lines, then "Assistant:"."""
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "must be a non-empty list of {role, content} objects")
    lines = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise bad(f"messages[{i}]", f"needs a role, one of {', '.join(CHAT_ROLES)}")
        content = message.get("content")
        if isinstance(content, list):  # content parts: their text, in order
            content = "".join(_text_part(part, f"messages[{i}].content[{j}]") for j, part in enumerate(content))
        if not isinstance(content, str):
            raise bad(f"messages[{i}].content", "must be a string or a list of text parts")
        lines.append(CHAT_ROLES[role] + valid_text(content, f"messages[{i}].content"))
    return "\n".join(lines) + "\nAssistant:"


class ReplyStart:
    """A chat reply as a client shows it: without the one space the model writes after the template's
    "Assistant:" (its first token is " Hello"), dropped from the first piece of text that has any."""

    def __init__(self, chat: bool):
        self.pending = chat

    def take(self, piece: str) -> str:
        if self.pending and piece:
            self.pending = False
            return piece[1:] if piece.startswith(" ") else piece
        return piece


def _text_part(part: object, where: str) -> str:
    if not isinstance(part, dict) or not isinstance(part.get("text"), str) or part.get("type", "text") != "text":
        raise bad(where, 'must be a text part, {"type": "text", "text": "..."}')
    return part["text"]


def valid_text(text: str, where: str) -> str:
    """`text` when it is valid Unicode; JSON can carry a lone surrogate, which no answer could hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad(where, f"is not valid Unicode (a lone surrogate at character {exc.start})") from None
    return text


def _logprobs(body: dict, chat: bool) -> tuple[bool, int]:
    """(whether logprobs are wanted, alternatives per token)."""
    if chat:
        want, top = bool(body.get("logprobs")), body.get("top_logprobs") or 0
        if top and not want:
            raise bad("top_logprobs", "needs logprobs: true")
        name = "top_logprobs"
    else:
        top = body.get("logprobs")
        want, top, name = top is not None, top or 0, "logprobs"
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise bad(name, f"must be a whole number from 0 to {MAX_TOP_LOGPROBS}, got {top!r}")
    return want, top


# ----- responses ------------------------------------------------------------------------------
def new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)


# tfchat's finish reasons as OpenAI's: a stop string or the model's end-of-text token is "stop", the
# server shutting down mid-request is "abort" (as vLLM says it), and every other end (the length, a
# cancel, a time limit) is "length".
_OPENAI_REASONS = {"stop": "stop", "end_of_text": "stop", "abort": "abort"}


def finish_reason(stats: GenerationStats | None) -> str | None:
    return None if stats is None else _OPENAI_REASONS.get(stats.finish_reason, "length")


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class LogprobShaper:
    """StepInfo as OpenAI's logprobs: completions' parallel lists, or chat's `content` entries."""

    def __init__(self, encoding, request: GenerationRequest):
        self._token_text = partial(token_text, encoding)  # id -> (text, bytes)
        self._request = request
        self._offset = 0  # completions' text_offset: where each token's text starts in the output

    def _name(self, token: int) -> str:
        return f"{TOKEN_ID_PREFIX}{token}" if self._request.tokens_as_ids else self._token_text(token)[0]

    def chat(self, steps: list[StepInfo]) -> dict:
        def entry(token: int, logprob: float) -> dict:
            text, data = self._token_text(token)
            return {"token": self._name(token), "logprob": _finite(logprob), "bytes": data}

        return {"content": [{**entry(s.id, s.logprob),
                             "top_logprobs": [entry(a.id, a.logprob) for a in s.top[: self._request.logprobs]]}
                            for s in steps]}

    def completion(self, steps: list[StepInfo]) -> dict:
        tokens, offsets = [], []
        for s in steps:
            tokens.append(self._name(s.id))
            offsets.append(self._offset)
            self._offset += len(self._token_text(s.id)[0])
        return {"tokens": tokens, "token_logprobs": [_finite(s.logprob) for s in steps],
                "top_logprobs": [{self._name(a.id): _finite(a.logprob) for a in s.top[: self._request.logprobs]}
                                 for s in steps],
                "text_offset": offsets}

    def shape(self, steps: list[StepInfo]) -> dict | None:
        if not self._request.want_logprobs:
            return None
        return self.chat(steps) if self._request.chat else self.completion(steps)


def _finite(logprob: float) -> float:
    """JSON has no -inf: a token the model gives no chance at all gets OpenAI's floor instead."""
    return logprob if math.isfinite(logprob) else -9999.0


def completion_object(request: GenerationRequest, model: str, response_id: str, text: str,
                      logprobs: dict | None, stats: GenerationStats) -> dict:
    reason = finish_reason(stats)
    if request.chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                  "finish_reason": reason}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": reason}
        kind = "text_completion"
    return {"id": response_id, "object": kind, "created": int(time.time()), "model": model, "choices": [choice],
            "usage": usage(stats.prompt_tokens, stats.new_tokens)}


def chunk_object(request: GenerationRequest, model: str, response_id: str, text: str | None,
                 logprobs: dict | None, reason: str | None, first: bool = False) -> dict:
    """One server-sent event's object; `text` None on the last chunk when it carries no text."""
    if request.chat:
        delta = {"role": "assistant", "content": text or ""} if first else ({"content": text} if text else {})
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": logprobs, "finish_reason": reason}
        kind = "text_completion"
    return {"id": response_id, "object": kind, "created": int(time.time()), "model": model, "choices": [choice]}


def usage_chunk(request: GenerationRequest, model: str, response_id: str, stats: GenerationStats) -> dict:
    kind = "chat.completion.chunk" if request.chat else "text_completion"
    return {"id": response_id, "object": kind, "created": int(time.time()), "model": model, "choices": [],
            "usage": usage(stats.prompt_tokens, stats.new_tokens)}
