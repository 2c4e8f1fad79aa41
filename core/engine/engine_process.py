"""The engine in a child process, for a UI that must not slow it down.

In one process, every frame the UI draws holds the GIL that the generating
thread needs between torch calls; on 2 cores that cost the app a third of its
tokens/s. Here the model lives in a spawned child with its own interpreter, and
text comes back over a pipe. The handle mirrors `Engine`: `generate()` returns
an iterable of text pieces whose `stats` are set at the end.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
from pathlib import Path

from tfchat.core.decode.step_info import StepInfo, check_top_logprobs
from tfchat.core.engine.backend import ReportedShape
from tfchat.core.engine.stats import GenerationStats
from tfchat.core.engine.text_stream import RowEvent
from tfchat.core.engine.tokenizer import tokenizer_for
from tfchat.core.errors import CheckpointError, TfchatError, describe_exception
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.child_output import send_output_to_log
from tfchat.core.system.lifecycle import exit_when_orphaned, register_child
from tfchat.core.system.memory import process_resident_bytes
from tfchat.core.system.runtime import resolve_threads

_READY, _FAILED, _PIECE, _DONE, _ERROR, _ANSWER = "ready", "failed", "piece", "done", "error", "answer"
# Requests: (_GENERATE, context, params, top_logprobs, forced_ids), (_BATCH, contexts, params list)
# or (_ASK, question, *its arguments): one of QUESTIONS, answered whole
_GENERATE, _BATCH, _ASK = "generate", "batch", "ask"
QUESTIONS = ("logit_lens", "lens_spread", "attention", "next_token", "score", "use_training_text")


# The app shows 20 frames a second: a message a frame or two, not one a token. Each message wakes the
# app's receiving thread and takes the GIL from its UI; at 250 tok/s that cost the engine a third of its speed.
SEND_EVERY_S = 1 / 40


def _serve(conn, path: str, device: str, cancel, threads: int, weights: str = "exact") -> None:
    """Child: load the model, then run one generation per request until the pipe closes."""
    exit_when_orphaned()  # first: even a load that never returns must not outlive the app
    send_output_to_log()  # the terminal is the UI's: see `child_output`
    # A hangup reaches the whole process group; the app ends this child itself, after
    # it has asked for the stopped generation's stats.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tfchat.core.engine.in_process import Engine  # imported here: the child is a fresh interpreter (spawn)
    from tfchat.core.system.runtime import apply_threads, tune_allocator

    tune_allocator()
    apply_threads(threads)
    try:
        engine = Engine.load(path, device, weights)
    except TfchatError as exc:
        conn.send((_FAILED, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - reported as one line in the app
        conn.send((_FAILED, f"{path}: cannot load ({describe_exception(exc)})"))
        return
    conn.send((_READY, {"device": str(engine.device), "parameter_count": engine.parameter_count,
                        "card": engine.card.as_dict(),
                        "context_length": engine.config.context_length, "vocab_size": engine.config.vocab_size,
                        "embedding_rows": engine.config.embedding_rows,
                        "tokenizer_folder": str(engine.tokenizer_folder) if engine.tokenizer_folder else None}))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the app is gone
        if request is None:
            return
        try:
            if request[0] == _GENERATE:
                _serve_generation(conn, engine, cancel, *request[1:])
            elif request[0] == _BATCH:
                _serve_batch(conn, engine, cancel, *request[1:])
            elif request[0] == _ASK and request[1] == "score":  # the parent cleared `cancel` before asking
                conn.send((_ANSWER, engine.score(*request[2:], cancel=cancel)))
            elif request[0] == _ASK and request[1] in QUESTIONS:
                conn.send((_ANSWER, getattr(engine, request[1])(*request[2:])))
            else:  # never left unanswered: the app waits for one
                conn.send((_ERROR, f"the engine process does not know the request {request[0]!r}"))
        except TfchatError as exc:
            conn.send((_ERROR, str(exc)))
        except Exception as exc:  # noqa: BLE001
            conn.send((_ERROR, f"generation failed: {describe_exception(exc)}"))


def _serve_generation(conn, engine, cancel, context: str, params: dict, top_logprobs: int, forced_ids) -> None:
    params["stop"] = tuple(params["stop"])
    generation = engine.generate(context, SamplingParams(**params), cancel, top_logprobs, tuple(forced_ids))
    sent, pending, sent_at = 0, [], float("-inf")  # steps travel with the pieces they belong to

    def steps_since_sent() -> list:
        nonlocal sent
        new, sent = generation.steps[sent:], len(generation.steps)
        return [s.as_list() for s in new]

    for piece in generation:
        pending.append(piece)
        now = time.monotonic()
        if now - sent_at >= SEND_EVERY_S:  # the first piece at once: the time to the first token is seen
            conn.send((_PIECE, "".join(pending), steps_since_sent()))
            pending, sent_at = [], now
    if pending:
        conn.send((_PIECE, "".join(pending), steps_since_sent()))
    conn.send((_DONE, generation.stats.as_dict(), steps_since_sent()))


def _serve_batch(conn, engine, cancel, contexts: list[str], params: list[dict]) -> None:
    for p in params:
        p["stop"] = tuple(p["stop"])
    batch = engine.generate_batch(contexts, [SamplingParams(**p) for p in params], cancel)
    for event in batch:
        conn.send((_PIECE, (event.row, event.piece, event.stats.as_dict() if event.stats else None)))
    conn.send((_DONE, [s.as_dict() for s in batch.stats]))


class RemoteGeneration:
    def __init__(self, conn, lock: threading.Lock, local_cancel, remote_cancel, on_end=lambda: None):
        self._conn = conn
        self._on_end = on_end
        self._lock = lock
        self._local_cancel = local_cancel
        self._remote_cancel = remote_cancel
        self.stats: GenerationStats | None = None
        self.notice: str | None = None
        self.text = ""
        self.steps: list[StepInfo] = []

    def __iter__(self):
        with self._lock:  # one generation at a time on the pipe
            try:
                yield from self._receive()
            finally:
                self._on_end()

    def _receive(self):
        while True:
            # Wait in short slices so a stop asked for here reaches the child promptly.
            if self._local_cancel is not None and self._local_cancel.is_set():
                self._remote_cancel.set()
            try:
                if not self._conn.poll(0.02):
                    continue
                kind, payload, *steps = self._conn.recv()
            except (EOFError, OSError):
                raise TfchatError("the engine process ended unexpectedly; restart tfchat") from None
            if steps:
                self.steps.extend(StepInfo.from_list(step) for step in steps[0])
            if kind == _PIECE:
                yield self._piece(payload)
            elif kind == _DONE:
                self._done(payload)
                return
            else:
                raise TfchatError(payload)

    def _piece(self, piece: str) -> str:
        self.text += piece
        return piece

    def _done(self, stats: dict) -> None:
        self.stats = GenerationStats(**stats)


class RemoteBatch(RemoteGeneration):
    """The engine process's `BatchGeneration`: iterate for `RowEvent`s; `texts` and `stats` per row."""

    def __init__(self, rows: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.texts = [""] * rows
        self.stats: list[GenerationStats | None] = [None] * rows
        self.notices: list[str | None] = [None] * rows

    def _piece(self, payload) -> RowEvent:
        row, piece, stats = payload
        self.texts[row] += piece
        if stats is not None:
            self.stats[row] = GenerationStats(**stats)
        return RowEvent(row, piece, self.stats[row] if stats is not None else None)

    def _done(self, stats: list[dict]) -> None:
        self.stats = [GenerationStats(**s) for s in stats]


class EngineProcess:
    """A handle on the child; `load` blocks until the model is ready or has failed."""

    def __init__(self, process, conn, cancel, info: dict):
        self._process = process
        self._conn = conn
        self._lock = threading.Lock()
        self._cancel = cancel  # shared with the child, which checks it before every token
        self.device = info["device"]
        self.parameter_count = info["parameter_count"]
        self.config = ReportedShape(context_length=info["context_length"], vocab_size=info["vocab_size"],
                                    embedding_rows=info["embedding_rows"])
        self._card = info["card"]
        self._tokenizer_folder = info.get("tokenizer_folder")
        self._generating = False
        self._training_text = None  # an index to draft from, sent before the next generation

    @staticmethod
    def prepare() -> None:
        """Start multiprocessing's resource tracker now, while stderr is a real file.

        The tracker is started on the first shared Event and inherits stderr's
        descriptor; once a UI has replaced sys.stderr that start fails.
        """
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", threads: int | None = None,
             weights: str = "exact") -> "EngineProcess":
        """Start the child and wait for its model; `lifecycle.end_children` cuts the wait short."""
        context = mp.get_context("spawn")  # fork would copy the UI's threads and state
        parent, child = context.Pipe()
        cancel = context.Event()
        process = context.Process(target=_serve, args=(child, str(path), device, cancel, resolve_threads(threads),
                                                       weights),
                                  daemon=True, name="tfchat-engine")
        process.start()
        register_child(process)
        child.close()
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            raise CheckpointError(f"{path}: the engine process ended while loading") from None
        if kind == _FAILED:
            process.join(timeout=5)
            raise CheckpointError(payload)
        return cls(process, parent, cancel, payload)

    def use_training_text(self, index) -> None:
        """Like `Engine.use_training_text`: the index goes to the engine process before the next generation
        (asked now, it could meet one running)."""
        self._training_text = index

    def _send_training_text(self) -> None:
        if self._training_text is not None:
            index, self._training_text = self._training_text, None
            self._ask((_ASK, "use_training_text", index))

    def generate(self, context: str, params: SamplingParams, cancel=None, top_logprobs: int = 0,
                 forced_ids: tuple[int, ...] = ()) -> RemoteGeneration:
        """Like `Engine.generate`; setting `cancel` stops the generation within a token."""
        check_top_logprobs(top_logprobs)
        self._send_training_text()
        self._cancel.clear()
        self._generating = True  # until the generation has read its last message: see `_ask`
        self._conn.send((_GENERATE, context, params.as_dict(), top_logprobs, list(forced_ids)))
        return RemoteGeneration(self._conn, self._lock, cancel, self._cancel, self._generation_ended)

    def generate_batch(self, contexts: list[str], params: list[SamplingParams], cancel=None) -> RemoteBatch:
        """Like `Engine.generate_batch`; setting `cancel` stops every row within a step."""
        self._send_training_text()
        self._cancel.clear()
        self._generating = True
        self._conn.send((_BATCH, list(contexts), [p.as_dict() for p in params]))
        return RemoteBatch(len(contexts), self._conn, self._lock, cancel, self._cancel, self._generation_ended)

    def _generation_ended(self) -> None:
        self._generating = False

    def logit_lens(self, context: str, forced_ids: tuple[int, ...] = (), top_n: int = 5) -> list[list[tuple[int, float]]]:
        return self._ask((_ASK, "logit_lens", context, tuple(forced_ids), top_n))

    def lens_spread(self, context: str, forced_ids: tuple[int, ...] = ()) -> list[tuple[float, float]]:
        return self._ask((_ASK, "lens_spread", context, tuple(forced_ids)))

    def attention(self, context: str, forced_ids: tuple[int, ...] = ()):
        return self._ask((_ASK, "attention", context, tuple(forced_ids)))

    def next_token(self, context: str, forced_ids: tuple[int, ...] = (), off=(), chosen: int | None = None):
        return self._ask((_ASK, "next_token", context, tuple(forced_ids), tuple(off), chosen))

    def score(self, text: str, off=(), cancel: threading.Event | None = None):
        """Like `Engine.score`; setting `cancel` stops it within a pass (what was scored comes back)."""
        self._cancel.clear()
        done = threading.Event()

        def pass_cancel_on() -> None:  # waits in the kernel, a twentieth of a second at a time
            while not done.is_set():
                if cancel.wait(0.05):
                    self._cancel.set()
                    return

        if cancel is not None:
            threading.Thread(target=pass_cancel_on, daemon=True, name="tfchat-score-cancel").start()
        try:
            return self._ask((_ASK, "score", text, tuple(off)))
        finally:
            done.set()

    def describe(self) -> dict:
        """The model inspector's facts, with the engine process's resident memory now."""
        return {**self._card, "process_resident_bytes": process_resident_bytes(self._process.pid)}

    @property
    def encoding(self):
        return tokenizer_for(self._tokenizer_folder)  # loaded once per process, on first use

    def _ask(self, request: tuple):
        """One question and its answer, between generations (the pipe carries one thing at a time)."""
        if self._generating:
            raise TfchatError("the engine is generating; ask again when it has finished")
        with self._lock:
            try:
                self._conn.send(request)
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                raise TfchatError("the engine process ended unexpectedly; restart tfchat") from None
        if kind != _ANSWER:
            raise TfchatError(payload)
        return payload

    @property
    def child_pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.terminate()
