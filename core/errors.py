"""One error type per area; each carries a single line a user can act on."""


class TfchatError(Exception):
    """An error the user caused or can fix; shown as one line, never a traceback."""


class CheckpointError(TfchatError):
    """A model file that is missing, unreadable or not a book checkpoint."""


class PresetError(TfchatError):
    """A preset file or a generation setting that does not validate."""


class PromptError(TfchatError):
    """A prompt the loaded model cannot take."""


class TokenizerError(TfchatError):
    """The cl100k_base ranks are not installed."""


class TrainingError(TfchatError):
    """Bad training input or configuration."""


class HistoryError(TfchatError):
    """The history database cannot be opened or written."""
