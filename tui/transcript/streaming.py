"""Running a view's work off the UI thread: a generation streaming into an exchange or a comparison, or a
text being scored. However it ends, `finished` is set (a quit waits on it for the last tokens) and the
view's Done message is posted: the work's own, or one carrying the error as one line."""
from __future__ import annotations

import threading
from collections.abc import Callable

from textual.message import Message
from textual.widget import Widget

from tfchat.core.errors import TfchatError, describe_exception


def run_for_view(view: Widget, finished: threading.Event, work: Callable[[], Message],
                 failed: Callable[[str], Message], what: str) -> None:
    """Call `work` (on a worker thread; it streams through the view's feed and returns the Done to post)."""
    try:
        done = work()
    except TfchatError as exc:
        done = failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug or a dead backend: one line in the transcript, never a crash
        done = failed(f"{what} failed: {describe_exception(exc)}")
    finished.set()
    view.post_message(done)
