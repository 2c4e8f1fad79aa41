"""The training text in the app: indexed off the UI thread when the model is ready (--corpus, or the
path `tfchat train` recorded in the checkpoint) or on /corpus PATH, by a child process when it is not
in the cache yet (the app's process never loads torch); the overlap view (f12) on it."""
from __future__ import annotations

from tfchat.core.corpus.corpus_text import check_corpus_file
from tfchat.core.corpus.index_cache import NotIndexedYet
from tfchat.core.corpus.index_child import build_in_child
from tfchat.core.corpus.training_text import TrainingText, corpus_path_for, trained_sha256
from tfchat.core.errors import TfchatError
from tfchat.tui.chat.slash_commands import slash_command
from tfchat.tui.screens.overlap_screen import OverlapScreen
from tfchat.tui.transcript.compare_view import CompareView


def open_corpus(chat, explicit: str | None, recorded: dict | None, say_done: bool) -> None:
    """Index the training text on a worker thread; the notice row says when it is ready or what is wrong."""
    choice, engine = chat.corpus, chat.engine
    try:
        path = corpus_path_for(explicit, recorded)
        check_corpus_file(path)  # a folder, a FIFO, too large: said at once, before the worker reads it
    except TfchatError as exc:
        choice.problem = str(exc)
        if say_done:
            raise
        return
    choice.loading, choice.problem = str(path), None
    expected = trained_sha256(explicit, recorded)

    def index() -> None:  # off the UI thread: reading and hashing the text, then the index
        try:
            try:
                opened, problem = TrainingText.open(path, engine.encoding, False, expected), None
            except NotIndexedYet:  # built in a child process (torch), then read from the cache
                build_in_child(path, engine.encoding)
                opened, problem = TrainingText.open(path, engine.encoding, False, expected), None
        except TfchatError as exc:
            opened, problem = None, str(exc)
        chat.app.call_from_thread(corpus_opened, chat, opened, problem, say_done)

    chat.run_worker(index, thread=True, group="corpus", exit_on_error=False, description="indexing the corpus")


def corpus_opened(chat, opened, problem: str | None, say_done: bool) -> None:
    choice = chat.corpus
    choice.loading = None
    if opened is None:
        choice.problem = problem
        chat.transcript.add_notice(f"corpus: {problem}", error=True)
        return
    choice.training_text = opened
    chat.engine.use_training_text(opened.index)  # drafts from it too (`core.decode.drafting`): only faster
    if say_done:
        chat.transcript.add_notice(f"Corpus: {opened.described()}. f12 shows what an output copies from it.")
    else:
        chat.notify(f"Corpus ready: {opened.described()} (f12).")


def open_corpus_at_start(chat, card: dict) -> None:
    """When the first model is ready: the corpus given with --corpus, else the one its checkpoint records."""
    choice = chat.corpus
    if choice.started:
        return
    choice.started = True
    recorded = card.get("training_text") if isinstance(card, dict) else None
    open_corpus(chat, choice.asked, recorded, say_done=bool(choice.asked))  # with neither: the problem to say


@slash_command("/corpus")
def corpus_command(chat, path: str) -> None:
    if chat.engine is None:
        raise TfchatError("the model is not loaded yet; give /corpus once it is ready")
    chat.corpus.asked = path
    open_corpus(chat, path, None, say_done=True)
    chat.transcript.add_notice(f"Indexing {path}…")


def overlap_sources(chat):
    """What the overlap view holds against the corpus: the last output, or each column of the last comparison."""
    def sources() -> list[tuple[str, str]]:
        views = chat.transcript.saved_views()
        if not views:
            return []
        last = views[-1]
        if isinstance(last, CompareView):
            return [(column.label, column.output) for column in last.columns]
        return [(f"“{' '.join(last.prompt.split())[:40]}”", last.output)]
    return sources


def show_overlap(chat) -> None:
    """f12: the overlap view of the last output, when there is one and the corpus is indexed."""
    if not chat.corpus.ready():
        chat.notify(chat.corpus.unavailable(), severity="warning")
        return
    sources = overlap_sources(chat)
    if not sources():
        chat.notify("No output to compare with the corpus yet.", severity="warning")
        return
    chat.app.push_screen(OverlapScreen(sources, chat.corpus.training_text))
