"""Hyper-parameters for training: YAML defaults, flag overrides, one validation."""
from __future__ import annotations

from pathlib import Path

from tfchat.core.errors import TrainingError
from tfchat.core.settings.safe_yaml import YamlRefused, load_file
from tfchat.core.system.paths import BUILTIN_TRAIN_CONFIG


INT_KEYS = ("d_model", "num_heads", "num_blocks", "context_length", "batch_size", "max_iters",
            "eval_interval", "eval_iters", "TORCH_SEED")
FLOAT_KEYS = ("dropout", "learning_rate")
KNOWN_KEYS = INT_KEYS + FLOAT_KEYS


def load_train_config(path: Path | None, overrides: dict) -> dict:
    path = Path(path) if path else BUILTIN_TRAIN_CONFIG
    try:
        data, _duplicates = load_file(path)
    except YamlRefused as exc:
        raise TrainingError(f"{path}: {exc}") from None
    data = data if data is not None else {}
    if not isinstance(data, dict):
        raise TrainingError(f"{path}: expected a mapping of hyper-parameter names to values")
    unknown = [k for k in data if k not in KNOWN_KEYS]
    if unknown:
        raise TrainingError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(KNOWN_KEYS)})")
    missing = [k for k in KNOWN_KEYS if k not in data and k not in overrides]
    if missing:
        raise TrainingError(f"{path}: missing key {missing[0]!r}")
    flags = {k: v for k, v in overrides.items() if v is not None}
    config = {**data, **flags}
    problems = config_problems(config)
    if problems:
        keys, message = problems[0]
        given = [k for k in keys if k in flags]
        # Blame what the user typed: the flag when it came from the command line, else the file.
        where = " ".join(f"{flag_name(k)} {flags[k]}" for k in given) if given else str(path)
        raise TrainingError(f"{where}: {message}")
    return {k: (float(v) if k in FLOAT_KEYS else v) for k, v in config.items()}


def flag_name(key: str) -> str:
    """The command-line flag for a hyper-parameter: num_heads -> --num-heads."""
    return "--" + key.lower().replace("_", "-")


def config_problems(c: dict) -> list[tuple[tuple[str, ...], str]]:
    """(the keys at fault, what is wrong) for each problem; empty when the config is sound."""
    problems = []
    for key in INT_KEYS:
        value = c[key]
        if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and key != "TORCH_SEED"):
            problems.append(((key,), f"{key} must be a positive integer, got {value!r}"))
    for key in FLOAT_KEYS:
        if isinstance(c[key], bool) or not isinstance(c[key], (int, float)):
            problems.append(((key,), f"{key} must be a number, got {c[key]!r}"))
    if problems:
        return problems
    if c["d_model"] % c["num_heads"]:
        problems.append((("d_model", "num_heads"),
                         f"d_model {c['d_model']} is not divisible by num_heads {c['num_heads']}"))
    if c["d_model"] % 2:
        problems.append((("d_model",), f"d_model {c['d_model']} must be even (sinusoidal positions pair sin and cos)"))
    if not 0 <= c["dropout"] < 1:
        problems.append((("dropout",), f"dropout must be in [0, 1), got {c['dropout']}"))
    if not 0 < c["learning_rate"] < 1:
        problems.append((("learning_rate",), f"learning_rate must be in (0, 1), got {c['learning_rate']}"))
    return problems
