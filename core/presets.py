"""Named generation presets from YAML: the built-in file, then the user's additions.

Validated once here; the rest of tfchat only ever sees `SamplingParams`.
A bad user file is reported and skipped, never in the way of the built-ins.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import PresetError
from core.paths import BUILTIN_PRESETS, user_presets_file
from core.sampling import PARAM_NAMES, SamplingParams

_INT_KEYS = {"top_k", "max_new_tokens", "seed"}
_OPTIONAL_KEYS = {"top_k", "seed"}


@dataclass(frozen=True)
class Preset:
    name: str
    params: SamplingParams
    description: str = ""
    source: str = "built-in"


@dataclass
class PresetCatalog:
    presets: dict[str, Preset]
    warnings: list[str]

    def names(self) -> list[str]:
        return list(self.presets)

    def get(self, name: str) -> Preset:
        if name not in self.presets:
            raise PresetError(f"unknown preset {name!r}; available: {', '.join(self.presets)}")
        return self.presets[name]


def coerce_value(key: str, value):
    """A YAML or command-line value for `key`, in the type SamplingParams wants."""
    if key == "stop":
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(value)
        raise PresetError(f"must be a string or a list of strings, got {value!r}")
    if value is None and key in _OPTIONAL_KEYS:
        return None
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PresetError(f"must be an integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"must be a number, got {value!r}")
    return float(value)


def params_from_mapping(entries: dict, base: SamplingParams | None = None) -> SamplingParams:
    """Build validated params; errors name the key. `description` is ignored here."""
    values = {}
    for key, value in entries.items():
        if key == "description":
            continue
        if key not in PARAM_NAMES:
            raise PresetError(f"key {key!r}: unknown (known: {', '.join(PARAM_NAMES)})")
        try:
            values[key] = coerce_value(key, value)
        except PresetError as exc:
            raise PresetError(f"key {key!r}: {exc}") from None
    merged = {**(base.as_dict() if base else SamplingParams().as_dict()), **values}
    merged["stop"] = tuple(merged["stop"])
    try:
        return SamplingParams(**merged)
    except PresetError as exc:
        # validate_values starts every message with the key it is about.
        raise PresetError(f"key {str(exc).split(' ', 1)[0]!r}: {exc}") from None


def parse_presets_file(path: Path, source: str) -> dict[str, Preset]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise PresetError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) != {"presets"} or not isinstance(data["presets"], dict):
        raise PresetError(f"{path}: expected a top-level mapping 'presets:' of name -> settings")
    presets = {}
    for name, entries in data["presets"].items():
        if not isinstance(name, str) or not name.strip() or " " in name:
            raise PresetError(f"{path}: preset name {name!r} must be one word")
        if not isinstance(entries, dict):
            raise PresetError(f"{path}: preset {name!r}: expected a mapping of settings")
        try:
            params = params_from_mapping(entries)
        except PresetError as exc:
            raise PresetError(f"{path}: preset {name!r}: {exc}") from None
        description = entries.get("description", "")
        presets[name] = Preset(name, params, str(description) if description else "", source)
    return presets


def load_presets(builtin: Path = BUILTIN_PRESETS, user: Path | None = None) -> PresetCatalog:
    """Built-ins (an error here is a broken install), then the user's file on top."""
    presets = parse_presets_file(builtin, "built-in")
    warnings = []
    user = user if user is not None else user_presets_file()
    if user.exists():
        try:
            presets.update(parse_presets_file(user, "user"))
        except PresetError as exc:
            warnings.append(f"{exc} (user presets skipped)")
    return PresetCatalog(presets, warnings)
