"""Raw pastes arrive as one event, not one event per character.

A terminal without bracketed paste (or tmux's `paste-buffer` without `-p`) sends a paste as
plain keystrokes. Textual turns each character into a Key event, hands it from the input
thread to the event loop and routes it through the bindings: about 100 µs a character here,
so a 200 KB paste kept the app busy for half a minute and a ctrl+q typed after it waited
behind every character. This driver gathers the text keys the input thread reads while
the loop is busy and sends a long stretch of them as one Paste event; a short one (a key typed
by hand, `tmux send-keys hello`) is sent key by key, so bindings on letters still work.
"""
from __future__ import annotations

import threading
import time

from textual import events
from textual.message import Message

try:  # the driver Textual uses on Linux and macOS; Windows keeps Textual's own
    from textual.drivers.linux_driver import LinuxDriver
except ImportError:  # pragma: no cover - a platform without termios
    LinuxDriver = None

# A stretch of printable keys at least this long, read before the app could take the first,
# was not typed by hand: it is sent as one paste.
SHORTEST_RAW_PASTE = 32
# These keys are line breaks and tabs inside a pasted text, Enter and Tab anywhere else.
TEXT_IN_A_PASTE = {"enter": "\n", "ctrl+j": "\n", "tab": "\t"}
# A run holds a multi-line paste (its Enters are line breaks, not "send") only when it is this
# long with this many line breaks: commands a script types one after another (tmux send-keys
# "/preset greedy" Enter "a prompt" Enter) can be read together too, and must still each send.
LINE_PASTE_KEYS = 256
LINE_PASTE_BREAKS = 3
# The line breaks that end a multi-line paste's run wait this long for more of it before they
# go out as keys (the last one may be the Enter that sends it).
TRAILING_KEY_GRACE = 0.1
# A run read this soon after a multi-line paste's last part continues that paste.
PASTE_CONTINUES = 0.5
# A run is decided on once no key has come for this long (a paste is read in 4 KB pieces, a
# few milliseconds apart when the machine is busy), or once it has gathered for the longest.
QUIET = 0.01
LONGEST_GATHER = 0.25


def _is_text(key: Message) -> bool:
    return isinstance(key, events.Key) and (
        (key.is_printable and bool(key.character)) or key.key in TEXT_IN_A_PASTE)


def _is_line_paste(run: list[events.Key]) -> bool:
    return len(run) >= LINE_PASTE_KEYS and sum(key.key in TEXT_IN_A_PASTE for key in run) >= LINE_PASTE_BREAKS


def _text_end(run: list[events.Key]) -> int:
    """Where the run's trailing line breaks and tabs begin."""
    end = len(run)
    while end and run[end - 1].key in TEXT_IN_A_PASTE:
        end -= 1
    return end


class KeyRuns:
    """Gathers consecutive text keys; everything goes out through `send`, in the order read.

    `take` runs in the input thread, `flush` and the grace timer on the event loop; `send`
    is always called with the lock held, so what each of them sends is scheduled in order.
    """

    def __init__(self, send, soon, later, sender):
        self._send = send
        self._soon = soon  # soon(callback): runs it on the event loop; callable from any thread
        self._later = later  # later(delay, callback): the same after a delay; called on the loop
        self._sender = sender  # what the pastes made here come from (the app), as Textual expects
        self._lock = threading.Lock()
        self._run: list[events.Key] = []
        self._held: list[events.Key] = []  # line breaks that ended a multi-line paste's run, not yet sent
        self._run_started = self._last_taken = 0.0  # when the run's first and newest keys were read
        self._pasted_at = float("-inf")  # when a multi-line paste's last part went out

    def take(self, message: Message) -> None:
        with self._lock:
            if _is_text(message):
                self._last_taken = time.monotonic()
                self._run.append(message)
                if len(self._run) == 1:
                    self._run_started = self._last_taken
                    self._soon(self.flush)  # whatever the thread reads until then joins this run
                return
            # Anything else acts after all that was read before it.
            run, held, self._held = self._take_run(), self._held, []
            if held and run:
                self._send_paste(held + run)
            else:
                self._send_keys(held)
                self._send_split(run)
            self._send(message)

    def flush(self) -> None:
        with self._lock:
            if not self._run:
                return
            now = time.monotonic()
            if now - self._last_taken < QUIET and now - self._run_started < LONGEST_GATHER:
                self._later(QUIET, self.flush)  # keys are still coming: decide on the whole of them
                return
            run = self._take_run()
            if self._held or now - self._pasted_at < PASTE_CONTINUES or _is_line_paste(run):
                end = _text_end(run)
                self._send_paste(self._held + run[:end])
                self._held, self._pasted_at = run[end:], now
                if self._held:
                    self._later(TRAILING_KEY_GRACE, self._release_held)
            else:
                self._send_split(run)

    def _release_held(self) -> None:
        with self._lock:
            if self._held and not self._run:  # nothing more came: they were keys (Enter sends)
                self._send_keys(self._held)
                self._held = []

    def _take_run(self) -> list[events.Key]:
        run, self._run = self._run, []
        return run

    def _send_split(self, run: list[events.Key]) -> None:
        """Enter and Tab as keys; the text between them as a paste where it is long enough."""
        stretch: list[events.Key] = []
        for key in run + [None]:
            if key is not None and key.key not in TEXT_IN_A_PASTE:
                stretch.append(key)
                continue
            if len(stretch) >= SHORTEST_RAW_PASTE:
                self._send_paste(stretch)
            else:
                self._send_keys(stretch)
            stretch = []
            if key is not None:
                self._send(key)

    def _send_paste(self, keys: list[events.Key]) -> None:
        if keys:
            text = "".join(TEXT_IN_A_PASTE.get(key.key, key.character) for key in keys)
            self._send(events.Paste(text).set_sender(self._sender))

    def _send_keys(self, keys: list[events.Key]) -> None:
        for key in keys:
            self._send(key)


if LinuxDriver is not None:

    class RawPasteDriver(LinuxDriver):
        """Textual's terminal driver, with raw pastes sent as one Paste event."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._key_runs = KeyRuns(super().send_message, self._loop.call_soon_threadsafe,
                                     self._loop.call_later, self._app)

        def send_message(self, message: Message) -> None:
            self._key_runs.take(message)
else:  # pragma: no cover
    RawPasteDriver = None


def driver_with_raw_pastes(default: type) -> type:
    """The driver to run with: Textual's own where it is not the Linux/macOS terminal driver."""
    return RawPasteDriver if LinuxDriver is not None and default is LinuxDriver else default
