"""Where tfchat keeps things: XDG directories, and which model file to open."""
from __future__ import annotations

import os
from pathlib import Path

from tfchat.core.errors import TfchatError

_CORE = Path(__file__).resolve().parent.parent  # core/, this file being core/system/paths.py
PACKAGE_ROOT = _CORE.parent


def _shipped(folder: str) -> Path:
    """A folder tfchat ships: inside the package when installed from a wheel, else the checkout's own."""
    installed = _CORE / folder
    return installed if installed.is_dir() else PACKAGE_ROOT / folder


BUILTIN_PRESETS = _shipped("configs") / "presets.yaml"
BUILTIN_TRAIN_CONFIG = _shipped("configs") / "train.yaml"
SHIPPED_MODEL = _shipped("model") / "model.ckpt"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def cache_dir() -> Path:
    """What tfchat can rebuild, kept to save the time: the indexes of training texts."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "tfchat"


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "tfchat"


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "tfchat"


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "tfchat"


def user_presets_file() -> Path:
    return config_dir() / "presets.yaml"


def default_history_file() -> Path:
    return data_dir() / "history.sqlite3"


def user_path(text: str) -> Path:
    """A path as a user typed it, `~` and `~name` expanded; an unknown user is a TfchatError, not a crash."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory"
        raise TfchatError(f"{text}: no such user's home directory") from None


def resolve_model_path(explicit: str | None) -> Path:
    """--model, else $TFCHAT_MODEL, else ./model/model.ckpt, else the model tfchat ships."""
    if explicit:
        return user_path(explicit)
    from_env = os.environ.get("TFCHAT_MODEL")
    if from_env:
        return user_path(from_env)
    local = Path("model") / "model.ckpt"
    return local if local.exists() else SHIPPED_MODEL
