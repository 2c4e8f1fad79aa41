"""The tfchat app: builds the backend, shows the chat screen, and ends the session whatever ends it.

Quit, a hangup and SIGTERM all keep the partial exchange and end every child process.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding

from tfchat.core.engine.backend import Backend
from tfchat.core.engine.engine_process import EngineProcess
from tfchat.core.engine.reconnect import Reconnect
from tfchat.core.errors import TfchatError, describe_exception
from tfchat.core.settings.presets import PresetCatalog, load_presets
from tfchat.core.store.history import History, NoHistory, open_history
from tfchat.core.system.lifecycle import end_children, exit_hard_after, on_exit_signals, on_terminal_lost
from tfchat.core.system.paths import resolve_model_path
from tfchat.core.system.startup import StartupClock
from tfchat.tui.chat.palette import tfchat_commands
from tfchat.tui.chat.screen import ChatScreen
from tfchat.tui.messages import EngineFailed, EngineReady, EngineRetrying, ModelLoaded
from tfchat.tui.state.history_keeper import HistoryKeeper
from tfchat.tui.state.model_shelf import ModelShelf
from tfchat.tui.terminal.raw_paste import driver_with_raw_pastes
from tfchat.tui.widgets.notice_row import NoticeRow

# An exit must be over within 2 s of a hangup or a quit: what a graceful exit has
# not finished by then, the watchdog ends (Textual can block writing to a dead terminal).
EXIT_DEADLINE_S = 1.5


class TfchatApp(App):
    TITLE = "tfchat"
    COMMAND_PALETTE_BINDING = "f1"
    # In every screen, the inside views' too; the chat screen shows it on its key bar.
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
                Binding("f10", "next_model", "Model", show=False, tooltip="Make the next loaded model active")]

    def __init__(self, model_path: Path, device: str, catalog: PresetCatalog, history: History | NoHistory,
                 preset: str | None = None, engine_loader=EngineProcess.load, remote: str | None = None,
                 initial_prompt: str | None = None, more_models: tuple[Path, ...] = (), resume: bool = False,
                 corpus: str | None = None):
        super().__init__()
        self.shelf = ModelShelf([model_path, *more_models])  # --model repeated: the first is active
        # (path, device) -> a backend (core.engine.backend): in-process, engine process or HTTP; run off the UI thread
        self.engine_loader = engine_loader
        self.model_path = model_path
        self.remote = remote  # the server's URL when the model is behind one (--endpoint), else None
        self.device_name = device
        self.history = history
        self.engine: Backend | None = None
        self.chat = ChatScreen(catalog, HistoryKeeper(history), self.shelf, model_label=remote or model_path.name,
                               model_source=remote or str(model_path), preset=preset, initial_prompt=initial_prompt,
                               resume=resume, corpus=corpus,
                               when_shown=self.first_frame_shown, retry_now=self.retry_engine_now,
                               load_more_models=self.load_more_models)
        self.startup = StartupClock()  # first frame and ready, after launch: the load line and f8 show them
        self.reconnect = Reconnect()  # a server down at start is tried again until it answers
        self._ending = threading.Event()
        self._ui_loop: asyncio.AbstractEventLoop | None = None  # for the exit thread, which must not touch widgets
        self.exit_watchdog = False  # set by run_app: a real session's exits are bounded in time

    def get_default_screen(self) -> ChatScreen:
        return self.chat

    def on_mount(self) -> None:
        self._ui_loop = asyncio.get_running_loop()

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield from tfchat_commands(self.chat)

    # ----- the backend ----------------------------------------------------------------
    def first_frame_shown(self) -> None:
        """The frame is on screen: only now does the model start loading, so it never delays the frame."""
        self.startup.first_frame()
        self.load_engine()

    @work(thread=True, exit_on_error=False, group="engine", description="loading the model")
    def load_engine(self) -> None:
        if self.remote is None and not self.model_path.exists():
            self.post_message(EngineFailed(str(self.model_path), missing_model=True))
            return
        try:
            self.engine = self.reconnect.run(
                lambda: self.engine_loader(self.model_path, self.device_name),
                lambda reason, delay, tries: self.post_message(EngineRetrying(reason, delay, tries)))
        except TfchatError as exc:
            self.post_message(EngineFailed(str(exc)))
            return
        except Exception as exc:  # a bug or an odd platform: still one line, never a crash
            self.post_message(EngineFailed(f"{self.remote or self.model_path}: cannot load "
                                                f"({describe_exception(exc)})"))
            return
        if self.engine is not None:  # None: the app quit while waiting for a server
            self.shelf.slots[0].backend, self.shelf.slots[0].state = self.engine, "ready"
            self.post_message(EngineReady(self.engine))
            self.load_more_models()

    def load_more_models(self) -> None:
        """The shelf's other models (`tui.state.model_shelf`), one after the other, on a thread of their own."""
        self.shelf.load_waiting(self.engine_loader, self.device_name, lambda slot: self.post_message(ModelLoaded(slot)),
                                self._ending)

    def action_next_model(self) -> None:
        self.chat.action_next_model()

    @on(ModelLoaded)
    def _model_loaded(self, message: ModelLoaded) -> None:
        self.chat.model_loaded(message.slot)

    def retry_engine_now(self) -> bool:
        """Cut a wait for the server short; False when nothing is waiting."""
        if self.engine is not None or self.reconnect.stopped:
            return False
        self.reconnect.retry_now()
        return True

    @on(EngineReady)
    def _engine_ready(self, message: EngineReady) -> None:
        self.startup.ready()
        self.chat.engine_ready(message.engine, self.startup.summary())

    @on(EngineRetrying)
    def _engine_retrying(self, message: EngineRetrying) -> None:
        self.chat.engine_retrying(message.reason, message.delay_s, message.tries)

    @on(EngineFailed)
    def _engine_failed(self, message: EngineFailed) -> None:
        self.chat.engine_failed(message.reason, message.missing_model)

    # ----- ending ---------------------------------------------------------------------
    def end_from_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away) or SIGTERM: keep the partial exchange, end everything.

        Called inside the signal handler, so it only starts a thread: the event
        loop may be the very thing that is stuck (Textual blocks writing frames
        to a terminal that is gone).
        """
        if self._ending.is_set():
            return  # a hangup can arrive twice: as SIGHUP and as the terminal guard's finding
        self._ending.set()
        hangup = signum == getattr(signal, "SIGHUP", None)
        code = 128 + signum
        exit_hard_after(EXIT_DEADLINE_S, code)
        threading.Thread(target=self._end_session, args=("hangup" if hangup else "terminated", code, hangup),
                         name="tfchat-exit", daemon=True).start()

    def _end_session(self, reason: str, code: int, terminal_gone: bool) -> None:
        self.chat.keep_interrupted(reason)  # committed to SQLite before anything else can go wrong
        self.reconnect.stop()
        end_children()
        if terminal_gone or self._ui_loop is None:
            # Nothing to restore on a terminal that is gone, and Textual's shutdown
            # would block writing to it: leave now, everything worth keeping is kept.
            os._exit(code)
        self._ui_loop.call_soon_threadsafe(partial(self.exit, return_code=code))

    async def action_quit(self) -> None:
        """Quit at once, even while the model loads: the partial exchange is kept, children end."""
        if self.exit_watchdog:
            exit_hard_after(EXIT_DEADLINE_S + 0.5, 0)
        self.chat.keep_interrupted("quit")
        self.reconnect.stop()
        end_children()  # a model still loading (or a FIFO that never answers) must not hold the exit
        self.exit()

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notices go to the screen's own row (above the prompt, above a view's key line), where they
        hide nothing; a toast would sit over the very field it talks about."""
        rows = self.screen.query(NoticeRow)
        if rows:
            rows.first().show(message, severity, timeout, markup)
        else:
            super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_unmount(self) -> None:
        self.reconnect.stop()
        self.shelf.close()
        end_children()


def make_app(model: str | list[str] | None = None, device: str = "auto", preset: str | None = None,
             history: str | None = None, engine_loader=EngineProcess.load, endpoint: str | None = None,
             api_key: str | None = None, remote_model: str | None = None,
             endpoint_timeout: float | None = None, initial_prompt: str | None = None,
             resume: bool = False, corpus: str | None = None) -> TfchatApp:
    """The one way to build the app: the CLI, Pilot tests and snapshot tests all use it.

    With `endpoint`, the model is an OpenAI-compatible server's (`core.engine.http_client`)."""
    catalog = load_presets()
    if preset is not None:
        catalog.get(preset)
    EngineProcess.prepare()
    if endpoint is not None:
        from tfchat.core.engine.http_client import HttpBackend

        engine_loader = lambda _path, _device: HttpBackend.connect(  # noqa: E731
            endpoint, api_key, remote_model, endpoint_timeout)
    models = model if isinstance(model, list) else [model]
    return TfchatApp(resolve_model_path(models[0]), device, catalog, open_history(history), preset, engine_loader,
                     remote=endpoint, initial_prompt=initial_prompt, resume=resume, corpus=corpus,
                     more_models=tuple(resolve_model_path(m) for m in models[1:]))


def run_app(model: str | list[str] | None, device: str, preset: str | None, history: str | None,
            threads: int | None = None, initial_prompt: str | None = None, endpoint: str | None = None,
            api_key: str | None = None, remote_model: str | None = None, endpoint_timeout: float | None = None,
            resume: bool = False, corpus: str | None = None, weights: str = "exact") -> int:
    app = make_app(model, device, preset, history,
                   engine_loader=partial(EngineProcess.load, threads=threads, weights=weights),
                   endpoint=endpoint, api_key=api_key, remote_model=remote_model, endpoint_timeout=endpoint_timeout,
                   initial_prompt=initial_prompt, resume=resume, corpus=corpus)
    app.exit_watchdog = True
    if sys.stdout.isatty():
        # A shell that could not ask the terminal sets COLUMNS=80 LINES=24, and Textual takes those before the
        # terminal's own size: a 60x20 pane was drawn as 80x24, its top rows scrolled away. The terminal knows.
        for stale in ("COLUMNS", "LINES"):
            os.environ.pop(stale, None)
    app.driver_class = driver_with_raw_pastes(app.driver_class)
    on_exit_signals(app.end_from_signal)
    if sys.stdin is not None and sys.stdin.isatty():
        on_terminal_lost(sys.stdin.fileno(), lambda: app.end_from_signal(signal.SIGHUP))
    try:
        app.run()
    finally:
        end_children()
    return app.return_code or 0
