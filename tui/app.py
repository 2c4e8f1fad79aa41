"""The tfchat app: wires the engine, presets, history and widgets together."""
from __future__ import annotations

import asyncio
import queue
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from core.engine.backend import Backend
from core.engine.engine_process import EngineProcess
from core.errors import TfchatError, describe_exception
from core.store.history import History, NoHistory, open_history
from core.system.lifecycle import end_children, on_exit_signals, on_terminal_lost
from core.system.paths import resolve_model_path
from core.settings.presets import PresetCatalog, load_presets, params_from_mapping
from core.settings.sampling_params import SamplingParams
from tui.branches import branch_from
from tui.compare_mode import KEEP_KEY, CompareMixin
from tui.context_meter import ContextMeter
from tui.editor import edit_text
from tui.ending import EndingMixin
from tui.history_keeping import HistoryKeepingMixin
from tui.insight import TOP_LOGPROBS, InsightMixin
from tui.inspector_screen import load_summary
from tui.key_bar import KeyBar
from tui.keys import alt_digit
from tui.messages import EngineFailed, EngineReady, GenerationDone
from tui.palette import tfchat_commands
from tui.prompt_input import PromptInput
from tui.raw_paste import driver_with_raw_pastes
from tui.generation_session import GenerationSession
from tui.session import BranchRequest, CompareRequest, ContinueRequest, PromptRequest, RegenerateRequest, Request
from tui.sidebar import PresetSidebar
from tui.slash_commands import SlashCommandsMixin
from tui.status_line import StatusLine
from tui.token_view import legend
from tui.transcript import ExchangeView, Transcript

# Streamed text is rendered in batches; each frame costs the UI several milliseconds.
DRAIN_INTERVAL_S = 1 / 20
LAST_PRESET_KEY = "last_preset"
# Narrower than this, the sidebar would squeeze the transcript and the prompt: hidden unless asked for.
SIDEBAR_MIN_WIDTH = 72


class TfchatApp(SlashCommandsMixin, HistoryKeepingMixin, InsightMixin, CompareMixin, EndingMixin, App):
    TITLE = "tfchat"
    COMMAND_PALETTE_BINDING = "f1"
    # Focused from the first frame, so keys typed while tfchat starts land in the prompt.
    AUTO_FOCUS = "#prompt"
    CSS = """
    #main { width: 1fr; }
    #body { height: 1fr; }
    #legend { height: 1; padding: 0 1; display: none; }
    """
    # In the key bar's order of importance: a narrow terminal shows the first ones (f1 lists them all).
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop the generation, keeping its output"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit (a running generation is kept)"),
        Binding("ctrl+n", "next_preset", "Preset", key_display="^n/^p", tooltip="Next preset"),
        Binding("ctrl+p", "previous_preset", "Prev", show=False, tooltip="Previous preset"),
        # alt+digit as ESC-digit is caught in on_key (see tui.keys); these serve kitty-protocol terminals.
        Binding("alt+1", "choose_preset(1)", "Pick", key_display="M-1…9", tooltip="Choose preset 1-9 directly"),
        *[Binding(f"alt+{i}", f"choose_preset({i})", f"Preset {i}", show=False) for i in range(2, 10)],
        Binding("ctrl+r", "regenerate", "Regen", tooltip="Regenerate: send the last prompt again"),
        Binding("ctrl+g", "continue_output", "More", tooltip="Continue the last output by max_new_tokens"),
        Binding("f4", "edit_prompt", "Editor", tooltip="Edit the prompt in $EDITOR"),
        Binding("f2", "show_history", "History", tooltip="Browse, search and resend past exchanges"),
        Binding("f3", "toggle_probabilities", "Probs", tooltip="Colour each generated token by its probability"),
        Binding("f5", "inspect_tokens", "Tokens",
                tooltip="Token cursor: each step's candidates, the logit lens, branch from another token"),
        Binding("alt+left", "switch_branch(-1)", "Branch", key_display="M-←/→",
                tooltip="Previous branch of the last exchange"),
        Binding("alt+right", "switch_branch(1)", "Next branch", show=False, tooltip="Next branch of the last exchange"),
        # Priority: the prompt (a TextArea) would take f6 and f7 as select line / select all.
        Binding("f6", "toggle_compare", "Compare", priority=True,
                tooltip="Compare mode: each prompt goes to several presets side by side (/compare chooses them)"),
        # Off the key bar: the comparison itself says what f7 does, once there is something to keep.
        Binding(KEEP_KEY, "keep_column", "Keep", priority=True, show=False,
                tooltip="Keep a column of the last comparison (again: the next one)"),
        Binding("f8", "inspect_model", "Model", tooltip="Model inspector: file, h_params, every tensor, memory"),
        Binding("ctrl+t", "toggle_mode", "Mode", tooltip="Switch completion / continue mode"),
        Binding("ctrl+l", "clear", "Clear", tooltip="Clear the screen and the continue context"),
        Binding("ctrl+o", "copy_output", "Copy", tooltip="Copy the last output (OSC 52, works over SSH)"),
        Binding("ctrl+s", "toggle_sidebar", "Sidebar", tooltip="Show or hide the preset sidebar"),
        # Scrolling the transcript while typing: the prompt has no use for these keys.
        Binding("pageup", "scroll_transcript('page_up')", "Page up", show=False, priority=True),
        Binding("pagedown", "scroll_transcript('page_down')", "Page down", show=False, priority=True),
        Binding("ctrl+home", "scroll_transcript('home')", "Top", show=False, priority=True),
        Binding("ctrl+end", "scroll_transcript('end')", "Bottom", show=False, priority=True),
    ]

    def __init__(self, model_path: Path, device: str, catalog: PresetCatalog, history: History | NoHistory,
                 preset: str | None = None, engine_loader=EngineProcess.load, remote: str | None = None):
        super().__init__()
        # (path, device) -> a backend (core.engine.backend): in-process, engine process or HTTP; run off the UI thread
        self.engine_loader = engine_loader
        self.model_path = model_path
        self.remote = remote  # the server's URL when the model is behind one (--endpoint), else None
        self.device_name = device
        self.catalog = catalog
        self.history = history
        self.history_problems: list[str] = [f"History is off: {history.problem}"] if isinstance(history, NoHistory) else []
        self._shown_problems = 0
        remembered = self._from_history(lambda: history.get_setting(LAST_PRESET_KEY), None)
        default = "balanced" if "balanced" in catalog.presets else catalog.names()[0]
        self.preset = preset or (remembered if remembered in catalog.presets else default)
        self.overrides: dict[str, dict] = {}  # preset name -> /set values for this session
        self.mode = "completion"
        self.engine: Backend | None = None
        self.session = GenerationSession()  # the queue, the running request, the continue context
        self._ending = threading.Event()
        self.exit_watchdog = False  # set by run_app: a real session's exits are bounded in time
        self.initial_prompt: str | None = None  # `tfchat -p TEXT`: sent once the model is ready
        self.pieces: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.meter = ContextMeter()
        self.sidebar_choice: bool | None = None  # None: shown when the terminal is wide enough
        self._meter_timer = None

    # ----- layout -----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield Transcript()
                yield Static(legend(), id="legend")
                yield PromptInput(recall=self._from_history(self.history.recent_prompts, []), id="prompt")
            yield PresetSidebar()
        yield StatusLine()
        yield KeyBar()

    def on_mount(self) -> None:
        status = self.query_one(StatusLine)
        status.model_name = self.remote or self.model_path.name
        status.mode = self.mode
        self._show_preset()
        self._place_sidebar()
        self.query_one(PromptInput).focus()
        for warning in self.catalog.warnings:
            self.query_one(Transcript).add_notice(warning, error=True)
        self._show_history_problems()
        self.set_interval(DRAIN_INTERVAL_S, self._drain)
        self._ui_loop = asyncio.get_running_loop()
        self.load_engine()
        self.load_meter()
        if self.initial_prompt and self.initial_prompt.strip():
            self.query_one(PromptInput).remember(self.initial_prompt)
            self._enqueue(PromptRequest(self.initial_prompt, self.preset, self.current_params(), self.mode))

    @property
    def model_source(self) -> str:
        """Where the model is, as the history and saved transcripts name it."""
        name = getattr(self.engine, "display_name", None)
        return name or self.remote or str(self.model_path)

    # ----- engine -----------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="engine", description="loading the model")
    def load_engine(self) -> None:
        if self.remote is None and not self.model_path.exists():
            self.post_message(EngineFailed(str(self.model_path), missing_model=True))
            return
        try:
            self.post_message(EngineReady(self.engine_loader(self.model_path, self.device_name)))
        except TfchatError as exc:
            self.post_message(EngineFailed(str(exc)))
        except Exception as exc:  # a bug or an odd platform: still one line, never a crash
            self.post_message(EngineFailed(f"{self.model_source}: cannot load ({describe_exception(exc)})"))

    @work(thread=True, exit_on_error=False, group="meter", description="loading the tokenizer")
    def load_meter(self) -> None:
        self.meter.load()
        self.call_from_thread(self._update_context_meter)

    @on(PromptInput.Changed)
    def _prompt_changed(self) -> None:
        # Counted a moment after typing pauses, not on every key.
        if self._meter_timer is not None:
            self._meter_timer.stop()
        self._meter_timer = self.set_timer(0.15, self._update_context_meter)

    def _update_context_meter(self) -> None:
        prompts = self.query(PromptInput)
        if not prompts:
            return  # a timer that fires while the app shuts down, its widgets gone
        count = self.meter.count(self._context_for(prompts.first().text))
        self.query_one(StatusLine).context_tokens = -1 if count is None else count

    def _context_for(self, prompt: str) -> str:
        """What the model is given for `prompt`: in continue mode, the transcript before it."""
        return (self.session.transcript() if self.mode == "continue" else "") + prompt

    @on(EngineReady)
    def _engine_ready(self, message: EngineReady) -> None:
        self.engine = message.engine
        status = self.query_one(StatusLine)
        status.device = str(self.engine.device)
        status.parameters = self.engine.parameter_count
        status.context_length = self.engine.config.context_length
        status.state = "ready"
        summary = load_summary(self.engine.describe())
        if summary:
            self.query_one(Transcript).add_notice(summary, id="load-summary")
        self._update_context_meter()
        self._start_next()

    @on(EngineFailed)
    def _engine_failed(self, message: EngineFailed) -> None:
        status = self.query_one(StatusLine)
        transcript = self.query_one(Transcript)
        if message.missing_model:
            status.state = "no model"
            transcript.add_notice(
                f"No model found at {message.reason}.\n"
                "Train one on a text file:   tfchat train my_text.txt   (writes model/model.ckpt)\n"
                "or point tfchat at one:     tfchat --model path/to/model.ckpt   (or set $TFCHAT_MODEL)",
                error=True,
            )
        else:
            status.state = "failed"
            transcript.add_notice(message.reason, error=True)
        if self.session.pending:
            transcript.add_notice(f"{len(self.session.pending)} queued prompt(s) cannot run without a model.", error=True)

    # ----- presets ----------------------------------------------------------------
    def current_params(self) -> SamplingParams:
        return self.params_for(self.preset)

    def params_for(self, name: str) -> SamplingParams:
        """A preset's params with this session's /set changes to it."""
        base = self.catalog.get(name).params
        changes = self.overrides.get(name)
        return params_from_mapping(changes, base) if changes else base

    def set_preset(self, name: str) -> None:
        self.catalog.get(name)  # raises with the list of names when unknown
        self.preset = name
        self._from_history(lambda: self.history.set_setting(LAST_PRESET_KEY, name), None)
        self._show_preset()
        self._show_history_problems()

    def _show_preset(self) -> None:
        """The active preset and its /set changes, in the sidebar and the status line."""
        changed = set(self.overrides.get(self.preset, {}))
        self.query_one(PresetSidebar).show(self.catalog, self.preset, self.current_params(), changed)
        status = self.query_one(StatusLine)
        status.preset, status.preset_changed = self.preset, bool(changed)

    def _step_preset(self, step: int) -> None:
        names = self.catalog.names()
        self.set_preset(names[(names.index(self.preset) + step) % len(names)])

    def action_next_preset(self) -> None:
        self._step_preset(+1)

    def action_previous_preset(self) -> None:
        self._step_preset(-1)

    def action_choose_preset(self, number: int) -> None:
        names = self.catalog.names()
        if 1 <= number <= len(names):
            self.set_preset(names[number - 1])

    def on_key(self, event: events.Key) -> None:
        digit = alt_digit(event.key, event.character)
        if digit is not None:
            event.stop()
            self.action_choose_preset(digit)

    @on(PresetSidebar.Chosen)
    def _preset_chosen(self, message: PresetSidebar.Chosen) -> None:
        self.set_preset(message.name)
        self.query_one(PromptInput).focus()

    # ----- sending ----------------------------------------------------------------
    @on(PromptInput.Submitted)
    def _submitted(self, message: PromptInput.Submitted) -> None:
        self.query_one(Transcript).scroll_end(animate=False)  # whatever was sent, show its result
        if self.run_slash_text(message.text):
            return
        text = message.text[1:] if message.text.startswith("//") else message.text
        if self.compare_presets:
            self._enqueue(self.compare_request(text))
        else:
            self._enqueue(PromptRequest(text, self.preset, self.current_params(), self.mode))

    def _enqueue(self, request: Request) -> None:
        if self.engine is None and self.query_one(StatusLine).state in ("no model", "failed"):
            self.query_one(Transcript).add_notice("No model is loaded; see the message above.", error=True)
            return
        self.session.queue(request)
        self._start_next()

    def _start_next(self) -> None:
        status = self.query_one(StatusLine)
        if self.session.active is None and self.engine is not None and self.session.pending:
            self._start(self.session.pending.popleft())
        status.queued = len(self.session.pending)

    def _start(self, request: Request) -> None:
        if isinstance(request, CompareRequest):
            self.start_compare(request)
            return
        last_view = self._last_view()
        forced: tuple[int, ...] = ()
        if isinstance(request, BranchRequest):
            view, step_index = request.view, request.step_index
            view.add_branch(branch_from(view.branches[request.parent], request.parent, step_index,
                                        request.alternative, request.params.as_dict()))
            context, forced = view.base_context or "", tuple(view.branch.token_ids(step_index + 1))
        elif isinstance(request, ContinueRequest) and last_view is not None:
            view, context = last_view, self.session.continue_context(self.mode)
            view.branch.begin_generation()
        else:
            view = self.query_one(Transcript).add_exchange(request.prompt, request.preset)
            view.show_probabilities(self.probabilities_shown, self.token_bytes)
            prior = self.session.transcript() if request.mode == "continue" else ""
            context = view.base_context = prior + request.prompt
            view.branch.begin_generation()
        note = self.meter.cropped_note(self.meter.count(context), self.engine.config.context_length)
        if note:
            view.note(note)
        view.mark_generation_start(request.params.as_dict())
        self.begin_generation(request, view)
        self._generate(context, request.params, self.session.cancel, self.session.generation_finished, forced)

    def begin_generation(self, request: Request, view) -> None:
        """`request` is the one running now, shown in `view`: a fresh stop event, and the status says so."""
        self.session.begin(request, view)
        self.query_one(StatusLine).state = "generating"

    def _last_view(self) -> ExchangeView | None:
        views = self.query_one(Transcript).exchanges()
        return views[-1] if views else None

    @work(thread=True, exit_on_error=False, group="generation", description="generating")
    def _generate(self, context: str, params: SamplingParams, cancel: threading.Event,
                  finished: threading.Event, forced: tuple[int, ...] = ()) -> None:
        # Runs off the UI thread; hands text over through a queue and a posted
        # message, never waiting for the UI.
        try:
            generation = self.session.active_generation = self.engine.generate(context, params, cancel, TOP_LOGPROBS, forced)
            if generation.notice:  # e.g. a server that does not take every sampler of the preset
                self.call_from_thread(self.session.active_view.note, generation.notice)
            for piece in generation:
                self.pieces.put(piece)
            finished.set()
            self.post_message(GenerationDone(generation.stats, steps=generation.steps))
        except TfchatError as exc:
            finished.set()
            self.post_message(GenerationDone(None, str(exc)))
        except Exception as exc:
            finished.set()
            self.post_message(GenerationDone(None, f"generation failed: {describe_exception(exc)}"))

    def _drain(self) -> None:
        chunks = []
        while True:
            try:
                chunks.append(self.pieces.get_nowait())
            except queue.Empty:
                break
        if chunks and self.session.active_view is not None:
            self.session.active_view.take(chunks)

    @on(GenerationDone)
    def _generation_done(self, message: GenerationDone) -> None:
        self._drain()
        request, view = self.session.end()
        self.query_one(StatusLine).state = "ready"
        if request is None or view is None:
            return
        view.branch.steps.extend(message.steps)
        self._forget_old_traces()
        if message.error:
            view.finish(message.error, "failed", reason="failed")
        else:
            stats = message.stats
            self.last_tokens_per_s = stats.tokens_per_s
            stopped = stats.finish_reason == "stopped"
            # The finish reason in the same word as the history and its exports.
            view.finish(f"{stats.new_tokens} tokens · {stats.tokens_per_s:.1f} tok/s · "
                        f"ttft {stats.ttft_s * 1000:.0f} ms · {request.preset} · {stats.finish_reason}",
                        "stopped" if stopped else "", stats=stats.as_dict(), reason=stats.finish_reason)
            self.session.remember(request, view.output)
            self._record(request, view.new_output(), stats.as_dict(), stats.finish_reason)
            self._show_history_problems()
        self._update_context_meter()  # continue mode: the transcript grew
        self._start_next()

    # ----- actions ----------------------------------------------------------------
    def action_stop(self) -> None:
        if self.session.active is not None:
            self.session.cancel.set()

    def action_regenerate(self) -> None:
        last = self.session.last_prompt
        if last is None:
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        self._enqueue(RegenerateRequest(last.prompt, self.preset, self.current_params(), last.mode))

    def action_continue_output(self) -> None:
        if not self.session.context_log and self.session.active is None:
            self.notify("Nothing to continue yet.", severity="warning")
            return
        self._enqueue(ContinueRequest("", self.preset, self.current_params(), self.mode))

    def action_toggle_mode(self) -> None:
        self.mode = "continue" if self.mode == "completion" else "completion"
        self.query_one(StatusLine).mode = self.mode
        self._update_context_meter()
        self.notify(f"Mode: {self.mode}" + (" (the transcript is the context)" if self.mode == "continue" else
                                            " (each prompt starts fresh)"))

    def action_copy_output(self) -> None:
        views = self.query_one(Transcript).exchanges()
        if not views or not views[-1].output:
            self.notify("No output to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(views[-1].output)
        self.notify(f"Copied {len(views[-1].output)} characters (OSC 52).")

    def action_clear(self) -> None:
        """Clear the screen and the continue context; a running exchange stays, and goes on."""
        transcript = self.query_one(Transcript)
        transcript.clear(keep=self.session.active_view)
        self.session.context_log.clear()
        self._update_context_meter()
        if self.session.active_view is not None:
            self.notify("Cleared; the running generation goes on (esc stops it).")

    def action_scroll_transcript(self, where: str) -> None:
        transcript = self.query_one(Transcript)
        {"page_up": transcript.scroll_page_up, "page_down": transcript.scroll_page_down,
         "home": transcript.scroll_home, "end": transcript.scroll_end}[where](animate=False)

    def action_toggle_sidebar(self) -> None:
        self.sidebar_choice = not self.query_one(PresetSidebar).display
        self._place_sidebar()

    def on_resize(self, event: events.Resize) -> None:
        self._place_sidebar(event.size.width)

    def _place_sidebar(self, width: int | None = None) -> None:
        """Shown where it leaves the transcript room; ctrl+s overrides that at any size."""
        automatic = (width or self.size.width) >= SIDEBAR_MIN_WIDTH
        self.query_one(PresetSidebar).display = automatic if self.sidebar_choice is None else self.sidebar_choice

    def action_edit_prompt(self) -> None:
        prompt = self.query_one(PromptInput)
        edited, problem = edit_text(self, prompt.text)
        if problem:
            self.notify(problem, severity="warning")
            return
        prompt.load_text(edited)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()

    def save_transcript_here(self) -> None:
        self.run_slash_text("/save " + time.strftime("tfchat-transcript-%Y%m%d-%H%M%S.md"))

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield from tfchat_commands(self)


def make_app(model: str | None = None, device: str = "auto", preset: str | None = None,
             history: str | None = None, engine_loader=EngineProcess.load, endpoint: str | None = None,
             api_key: str | None = None, remote_model: str | None = None,
             endpoint_timeout: float | None = None) -> TfchatApp:
    """The one way to build the app: the CLI, Pilot tests and snapshot tests all use it.

    With `endpoint`, the model is an OpenAI-compatible server's (`core.engine.http_client`)."""
    catalog = load_presets()
    if preset is not None:
        catalog.get(preset)
    EngineProcess.prepare()
    if endpoint is not None:
        from core.engine.http_client import HttpBackend

        engine_loader = lambda _path, _device: HttpBackend.connect(  # noqa: E731
            endpoint, api_key, remote_model, endpoint_timeout)
    return TfchatApp(resolve_model_path(model), device, catalog, open_history(history), preset, engine_loader,
                     remote=endpoint)


def run_app(model: str | None, device: str, preset: str | None, history: str | None,
            threads: int | None = None, initial_prompt: str | None = None, endpoint: str | None = None,
            api_key: str | None = None, remote_model: str | None = None, endpoint_timeout: float | None = None) -> int:
    app = make_app(model, device, preset, history, engine_loader=partial(EngineProcess.load, threads=threads),
                   endpoint=endpoint, api_key=api_key, remote_model=remote_model, endpoint_timeout=endpoint_timeout)
    app.initial_prompt = initial_prompt
    app.exit_watchdog = True
    app.driver_class = driver_with_raw_pastes(app.driver_class)
    on_exit_signals(app.end_from_signal)
    if sys.stdin is not None and sys.stdin.isatty():
        on_terminal_lost(sys.stdin.fileno(), lambda: app.end_from_signal(signal.SIGHUP))
    try:
        app.run()
    finally:
        end_children()
    return app.return_code or 0
