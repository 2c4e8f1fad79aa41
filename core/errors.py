"""One error type per area; each carries a single line a user can act on. And the exit codes."""

# A command ends with one of these: done, a bug (one line, TFCHAT_DEBUG=1 for the traceback),
# the user's mistake (one line), Ctrl+C (after what was generated so far).
EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class TfchatError(Exception):
    """An error the user caused or can fix; shown as one line, never a traceback."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class CheckpointError(TfchatError):
    """A model file that is missing, unreadable or not a book checkpoint."""


class PresetError(TfchatError):
    """A preset file or a generation setting that does not validate."""


class PromptError(TfchatError):
    """A prompt the loaded model cannot take."""


class GenerationError(TfchatError):
    """The model cannot go on: its logits are not finite numbers."""


class TokenizerError(TfchatError):
    """The cl100k_base ranks are not installed."""


class TrainingError(TfchatError):
    """Bad training input or configuration."""


class HistoryError(TfchatError):
    """The history database cannot be opened or written."""


class ExportError(TfchatError):
    """`tfchat export` cannot write its folder, or lacks its optional packages."""


class CorpusError(TfchatError):
    """A training text that cannot be read or indexed, or that moved or changed since training."""


# Every message a user sees is one line of at most this many characters: a
# C++ stack or a 10 MB repr must never reach the terminal whole.
MAX_MESSAGE_CHARS = 300


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` as a single line (first non-empty line), cut to `limit` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_exception(exc: BaseException) -> str:
    """An unexpected exception as one bounded line: its type and the start of its message."""
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
