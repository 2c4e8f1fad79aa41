"""The chat: a prompt pane, the streaming transcript, the preset sidebar, and what the keys do.

The screen turns what the user does into requests (tui.state.requests) and runs them one at a time
through its GenerationSession; tui.chat.request_runner starts each in the view that streams it (an
ExchangeView or, in compare mode, a CompareView) and ends it. The backend comes from the app (EngineReady).
"""
from __future__ import annotations

import time
from functools import partial
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from tfchat.core.engine.backend import Backend
from tfchat.core.settings.presets import PresetCatalog
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.settings.weights_choice import weights_label
from tfchat.tui.chat.backend_view import show_failed, show_ready, show_retrying
from tfchat.tui.chat.bindings import CHAT_BINDINGS, shown_bindings
from tfchat.tui.chat.compare_actions import keep_column, models_loaded_for
from tfchat.tui.chat.corpus_actions import open_corpus_at_start, show_overlap
from tfchat.tui.chat.inside_views import InsideViews
from tfchat.tui.chat.model_actions import announce_loaded, next_model, show_models
from tfchat.tui.chat.palette import TRANSCRIPT_NAME
from tfchat.tui.chat.request_actions import continue_request, regenerate_request, take_history_choice
from tfchat.tui.chat.request_runner import compare_done, generation_done, score_done, start_request
from tfchat.tui.chat.score_actions import ScoreView, score_prompt
from tfchat.tui.chat.slash_commands import run_slash_text
from tfchat.tui.chat.transcript_actions import clear_transcript, copy_output, scroll_transcript
from tfchat.tui.screens.history_screen import HistoryScreen
from tfchat.tui.screens.inspector_screen import load_summary
from tfchat.tui.state.backend_state import BackendState
from tfchat.tui.state.compare_choice import CompareChoice
from tfchat.tui.state.context_meter import ContextMeter
from tfchat.tui.state.corpus_choice import CorpusChoice
from tfchat.tui.state.generation_session import GenerationSession
from tfchat.tui.state.history_keeper import HistoryKeeper
from tfchat.tui.state.model_shelf import ModelShelf
from tfchat.tui.state.preset_choice import PresetChoice
from tfchat.tui.state.requests import PromptRequest, Request
from tfchat.tui.terminal.keys import alt_digit
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.transcript.exchange_view import ExchangeView
from tfchat.tui.transcript.pane import Transcript
from tfchat.tui.widgets.key_bar import KeyBar
from tfchat.tui.widgets.notice_row import NoticeRow
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.widgets.sidebar import PresetSidebar
from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.widgets.token_view import legend

LAST_PRESET_KEY = "last_preset"


class ChatScreen(Screen):
    # Focused from the first frame, so keys typed while tfchat starts land in the prompt.
    AUTO_FOCUS = "#prompt"
    DEFAULT_CSS = """
    ChatScreen #main { width: 1fr; }
    ChatScreen #body { height: 1fr; }
    ChatScreen #legend { height: 1; padding: 0 1; display: none; }
    """
    BINDINGS = CHAT_BINDINGS

    def __init__(self, catalog: PresetCatalog, keeper: HistoryKeeper, shelf: ModelShelf, model_label: str,
                 model_source: str, preset: str | None = None, initial_prompt: str | None = None, resume: bool = False,
                 corpus: str | None = None,
                 when_shown=lambda: None, retry_now=lambda: False, load_more_models=lambda: None):
        super().__init__()
        self._when_shown = when_shown  # the app starts loading the backend: its answer needs the widgets
        self._retry_now = retry_now  # cuts a wait for a server short; False when none is waiting
        self.load_more_models = load_more_models  # the app loads the shelf's models not loaded yet
        self.shelf = shelf  # every model given (--model, /model add); the active one is `engine`
        self.backend_state = BackendState()
        self.keeper = keeper
        self.model_label = model_label  # the status line's: the file's name or the server's URL
        self._model_source = model_source  # the file's path or the server's URL, until the backend names itself
        remembered = keeper.read(lambda: keeper.history.get_setting(LAST_PRESET_KEY), None)
        self.presets = PresetChoice.starting(catalog, preset, remembered)
        self.mode = "completion"
        self.engine: Backend | None = None
        self.session = GenerationSession()  # the queue, the running request, the continue context
        self.compare = CompareChoice()
        self.inside = InsideViews(self)
        self.initial_prompt = initial_prompt  # `tfchat -p TEXT`: sent once the model is ready
        self.resume = resume  # `tfchat --resume`: the last conversation reopened before anything else
        self.corpus = CorpusChoice(corpus)  # the training text, for the overlap view (f12)
        self.meter = ContextMeter()
        self._meter_timer = None

    # ----- layout -----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield Transcript()
                yield Static(legend(), id="legend")
                yield NoticeRow()
                yield PromptInput(recall=self.keeper.read(self.keeper.history.recent_prompts, []), id="prompt")
            yield PresetSidebar()
        yield StatusLine()
        yield KeyBar(shown_bindings())

    def on_mount(self) -> None:
        status = self.query_one(StatusLine)
        status.model_name = self.model_label
        status.mode = self.mode
        self.show_preset()
        self.query_one(PresetSidebar).fit(self.app.size.width)
        self.query_one(PromptInput).focus()  # now, not when the screen's first resume comes: keys may be waiting
        for warning in self.presets.catalog.warnings:
            self.transcript.add_notice(warning, error=True)
        self.show_history_problems()
        self._load_meter()
        self.call_after_refresh(self._when_shown)  # the frame first: loading the model competes for the cores
        if self.resume:
            self.run_slash_text("/resume")
        if self.initial_prompt and self.initial_prompt.strip():
            self.query_one(PromptInput).remember(self.initial_prompt)
            self.enqueue(PromptRequest(self.initial_prompt, self.presets.name, self.current_params(), self.mode))

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def model_source(self) -> str:
        """Where the model is, as the history and saved transcripts name it."""
        return getattr(self.engine, "display_name", None) or self._model_source

    @model_source.setter
    def model_source(self, source: str) -> None:
        self._model_source = source

    # ----- the backend ----------------------------------------------------------------
    def engine_ready(self, engine: Backend, startup: str | None = None) -> None:
        self.engine = engine
        self.meter.use(engine.encoding)  # a GPT-2 folder's own tokenizer; cl100k_base otherwise
        status = self.query_one(StatusLine)
        status.device = str(self.engine.device)
        status.parameters = self.engine.parameter_count
        status.context_length = self.engine.config.context_length
        show_ready(self)
        self.inside.startup = startup
        card = self.engine.describe()
        status.weights = weights_label(card.get("weights", "exact"))
        summary = load_summary(card, startup)
        if summary:
            self.transcript.add_notice(summary, id="load-summary")
        open_corpus_at_start(self, card)
        self.update_context_meter()
        show_models(self)
        self._start_next()

    def engine_retrying(self, reason: str, delay_s: float, tries: int) -> None:
        show_retrying(self, reason, delay_s, tries)

    def engine_failed(self, reason: str, missing_model: bool = False) -> None:
        show_failed(self, reason, missing_model)

    # ----- the models (tui.chat.model_actions) -------------------------------------------
    def action_next_model(self) -> None:
        next_model(self)

    def model_loaded(self, slot) -> None:
        announce_loaded(self, slot)
        self._start_next()  # a comparison of models may have waited for it

    # ----- the context meter ----------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="meter", description="loading the tokenizer")
    def _load_meter(self) -> None:
        self.meter.load()
        self.app.call_from_thread(self.update_context_meter)

    @on(PromptInput.Changed)
    def _prompt_changed(self) -> None:
        # Counted a moment after typing pauses, not on every key.
        if self._meter_timer is not None:
            self._meter_timer.stop()
        self._meter_timer = self.set_timer(0.15, self.update_context_meter)

    def update_context_meter(self) -> None:
        prompts = self.query(PromptInput)
        if not prompts:
            return  # a timer that fires while the app shuts down, its widgets gone
        # What the model is given for the prompt: in continue mode, the transcript before it.
        before = self.session.transcript() if self.mode == "continue" else ""
        count = self.meter.count(before + prompts.first().text)
        self.query_one(StatusLine).context_tokens = -1 if count is None else count

    # ----- presets ----------------------------------------------------------------
    def current_params(self) -> SamplingParams:
        return self.presets.current()

    def set_preset(self, name: str) -> None:
        self.presets.choose(name)  # raises with the list of names when unknown
        self.keeper.read(lambda: self.keeper.history.set_setting(LAST_PRESET_KEY, name), None)
        self.show_preset()
        self.show_history_problems()

    def show_preset(self) -> None:
        """The active preset and its /set changes, in the sidebar and the status line."""
        changed = self.presets.changed()
        self.query_one(PresetSidebar).show(self.presets.catalog, self.presets.name, self.current_params(), changed)
        status = self.query_one(StatusLine)
        status.preset, status.preset_changed = self.presets.name, bool(changed)
        status.window = self.current_params().window  # said on the status line unless it is the book's

    def action_next_preset(self) -> None:
        self.set_preset(self.presets.stepped(+1))

    def action_previous_preset(self) -> None:
        self.set_preset(self.presets.stepped(-1))

    def action_choose_preset(self, number: int) -> None:
        name = self.presets.numbered(number)
        if name is not None:
            self.set_preset(name)

    def on_key(self, event: events.Key) -> None:
        digit = alt_digit(event.key, event.character)
        if digit is not None:
            event.stop()
            self.action_choose_preset(digit)
            return
        prompt = self.query_one(PromptInput)
        if event.is_printable and self.focused is prompt:
            # The prompt never lets a printable key bubble, so this one was read while nothing had focus yet:
            # typed while tfchat started, before this screen's mount focused the prompt.
            event.stop()
            prompt.type_key(event)

    @on(PresetSidebar.Chosen)
    def _preset_chosen(self, message: PresetSidebar.Chosen) -> None:
        self.set_preset(message.name)
        self.query_one(PromptInput).focus()

    # ----- sending ----------------------------------------------------------------
    @on(PromptInput.Submitted)
    def _submitted(self, message: PromptInput.Submitted) -> None:
        self.transcript.scroll_end(animate=False)  # whatever was sent, show its result
        if run_slash_text(self, message.text):
            return
        text = message.text[1:] if message.text.startswith("//") else message.text
        self.send(text)

    def send(self, prompt: str) -> None:
        """A prompt as typed: to the active preset, or to every compared one."""
        if self.compare.presets:
            self.enqueue(self.compare.request(prompt, self.mode, self.presets.params_for))
        else:
            self.enqueue(PromptRequest(prompt, self.presets.name, self.current_params(), self.mode))

    def enqueue(self, request: Request) -> None:
        if self.engine is None and self.backend_state.unavailable:
            self.transcript.add_notice("No model is loaded; see the message above.", error=True)
            return
        self.query_one(NoticeRow).hide_warning()
        self.session.queue(request)
        self._start_next()

    def _start_next(self) -> None:
        if self.engine is not None:
            request = self.session.next_request(can_start=lambda request: models_loaded_for(self, request))
            if request is not None:
                self._start(request)
        self.query_one(StatusLine).queued = len(self.session.pending)

    def _start(self, request: Request) -> None:
        start_request(self, request)
        if self.session.active is None:  # it could not start (a branch of a cleared exchange): the next one
            self.call_later(self._start_next)

    @on(ExchangeView.Done)
    def _generation_done(self, message: ExchangeView.Done) -> None:
        generation_done(self, message)
        self._start_next()

    @on(CompareView.Done)
    def _compare_done(self, message: CompareView.Done) -> None:
        compare_done(self, message)
        self._start_next()

    @on(ScoreView.Done)
    def _score_done(self, message: ScoreView.Done) -> None:
        score_done(self, message)
        self._start_next()

    # ----- the history ------------------------------------------------------------------
    def keep_interrupted(self, reason: str) -> None:
        """Quit, hang-up or SIGTERM mid-generation: stop it and keep the partial output (any thread)."""
        self.session.keep_interrupted(reason, self.keeper, self.model_source)

    def show_history_problems(self) -> None:
        for problem in self.keeper.unshown_problems():
            self.transcript.add_notice(problem, error=True)

    def action_show_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.keeper.history), partial(take_history_choice, self))

    # ----- actions ----------------------------------------------------------------
    def action_stop(self) -> None:
        if self.session.active is not None:
            self.session.cancel.set()

    def action_interrupt(self) -> None:
        if self.session.active is not None:
            self.action_stop()
        else:
            self.notify("Nothing is running: [b]ctrl+q[/b] quits (or [b]ctrl+d[/b] on an empty prompt).",
                        markup=True)

    async def action_quit_on_empty_prompt(self) -> None:
        prompt = self.query_one(PromptInput)
        if prompt.text:
            prompt.action_delete_right()
        else:
            await self.run_action("app.quit")  # as ctrl+q: a running generation is kept

    def action_regenerate(self) -> None:
        if self.engine is None and self._retry_now():
            self.notify("Trying the server now.")
            return
        request = regenerate_request(self)
        if request is None:
            self.notify("Nothing to regenerate yet.", severity="warning")
        else:
            self.enqueue(request)

    def action_continue_output(self) -> None:
        request = continue_request(self)
        if request is None:
            self.notify("Nothing to continue yet.", severity="warning")
        else:
            self.enqueue(request)

    def action_toggle_mode(self) -> None:
        self.mode = "continue" if self.mode == "completion" else "completion"
        self.query_one(StatusLine).mode = self.mode
        self.update_context_meter()
        self.notify(f"Mode: {self.mode}" + (" (the transcript is the context)" if self.mode == "continue" else
                                            " (each prompt starts fresh)"))

    def action_toggle_compare(self) -> None:
        self.set_compare(None if self.compare.presets else self.compare.every_preset(self.presets.catalog))

    def set_compare(self, presets: list[str] | None, blind: bool = False) -> None:
        self.query_one(StatusLine).compare = self.compare.choose(presets, blind)
        self.notify(self.compare.announcement())

    def action_keep_column(self) -> None:
        keep_column(self)

    def action_copy_output(self) -> None:
        copy_output(self)

    def action_clear(self) -> None:
        clear_transcript(self)

    def action_scroll_transcript(self, where: str) -> None:
        scroll_transcript(self.transcript, where)

    def action_score_prompt(self) -> None:
        score_prompt(self)

    def action_toggle_sidebar(self) -> None:
        self.query_one(PresetSidebar).toggle()

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(PresetSidebar).fit(event.size.width)

    def action_edit_prompt(self) -> None:
        problem = self.query_one(PromptInput).edit_in_editor()
        if problem:
            self.notify(problem, severity="warning")

    def action_toggle_probabilities(self) -> None:
        self.inside.toggle_probabilities()

    def action_inspect_tokens(self) -> None:
        self.inside.inspect_tokens()

    def action_switch_branch(self, delta: int) -> None:
        self.inside.switch_branch(delta)

    def action_show_overlap(self) -> None:
        show_overlap(self)

    def action_inspect_model(self) -> None:
        self.inside.inspect_model()

    def run_slash_text(self, text: str) -> bool:
        """Carry out `text` if it is a slash command; False for a prompt."""
        return run_slash_text(self, text)

    def save_transcript_here(self) -> None:
        self.run_slash_text("/save " + time.strftime(TRANSCRIPT_NAME))

