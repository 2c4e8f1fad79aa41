"""Named generation presets from YAML: the built-in file, then the user's additions.

Validated once here; the rest of tfchat only ever sees `SamplingParams`.
A bad user file is reported and skipped, never in the way of the built-ins;
within a readable file, only the presets that do not validate are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfchat.core.errors import PresetError
from tfchat.core.settings.safe_yaml import YamlRefused, load_file
from tfchat.core.settings.sampling_params import PARAM_NAMES, SamplingParams
from tfchat.core.system.paths import BUILTIN_PRESETS, user_presets_file

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
    if key in ("window", "end_of_text", "draft"):
        return value  # SamplingParams says which policies there are
    if value is None and key in _OPTIONAL_KEYS:
        return None
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PresetError(f"must be an integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"must be a number, got {value!r}")
    return float(value)


def parse_setting(key: str, words: tuple[str, ...]):
    """A value typed after `/set KEY`, read strictly (never as YAML): numbers, `none`, or stop strings.

    Stop strings take escapes, so `/set stop "\\n\\n" "###"` sets two of them.
    """
    if key not in PARAM_NAMES:
        raise PresetError(f"unknown key {key[:40]!r} (known: {', '.join(PARAM_NAMES)})")
    if key == "stop":
        return [_unescape(word) for word in words]
    if len(words) != 1:
        raise PresetError(f"{key} takes one value, got {len(words)}")
    if key in ("window", "end_of_text", "draft"):
        return words[0].strip().lower()
    raw = words[0].strip()
    if raw.lower() in ("none", "null", "off") and key in _OPTIONAL_KEYS:
        return None
    try:
        return int(raw) if key in _INT_KEYS else float(raw)
    except ValueError:
        kind = "an integer" if key in _INT_KEYS else "a number"
        raise PresetError(f"{key} must be {kind}, got {raw[:40]!r}") from None


def _unescape(word: str) -> str:
    """Backslash escapes (\\n, \\t, \\u00e9) in a typed word; other characters kept as they are."""
    try:
        return word.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise PresetError(f"bad escape in {word[:40]!r}: {exc.reason}") from None


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


def parse_presets_file(path: Path, source: str, base: dict[str, Preset] | None = None
                       ) -> tuple[dict[str, Preset], list[str]]:
    """The file's valid presets, and one warning per preset or key skipped.

    A preset named like one in `base` changes only the keys it gives.

    A file that cannot be read as a whole (too big, not YAML, the wrong shape)
    raises PresetError naming it.
    """
    try:
        data, duplicates = load_file(path)
    except YamlRefused as exc:
        raise PresetError(f"{path}: {exc}") from None
    warnings = [f"{path}: {duplicate}" for duplicate in duplicates]
    if data is None:
        return {}, warnings
    if not isinstance(data, dict) or set(data) != {"presets"} or not isinstance(data["presets"], dict):
        raise PresetError(f"{path}: expected a top-level mapping 'presets:' of name -> settings")
    presets = {}
    for name, entries in data["presets"].items():
        try:
            presets[str(name)] = _parse_preset(name, entries, source, (base or {}).get(name))
        except PresetError as exc:
            warnings.append(f"{path}: preset {str(name)[:40]!r}: {exc} (preset skipped)")
    return presets, warnings


def _parse_preset(name, entries, source: str, base: Preset | None) -> Preset:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name) or len(name) > 40:
        raise PresetError("a preset name is one word of at most 40 characters")
    if not isinstance(entries, dict):
        raise PresetError("expected a mapping of settings")
    params = params_from_mapping(entries, base.params if base else None)
    description = entries.get("description", base.description if base else "")
    return Preset(name, params, str(description)[:200] if description else "", source)


def load_presets(builtin: Path = BUILTIN_PRESETS, user: Path | None = None) -> PresetCatalog:
    """Built-ins (an error here is a broken install), then the user's file on top."""
    presets, warnings = parse_presets_file(builtin, "built-in")
    if warnings:
        raise PresetError(warnings[0])
    user = user if user is not None else user_presets_file()
    if user.exists():
        try:
            user_presets, user_warnings = parse_presets_file(user, "user", base=presets)
            presets.update(user_presets)
            warnings += user_warnings
        except PresetError as exc:
            warnings.append(f"{exc} (user presets skipped)")
    return PresetCatalog(presets, warnings)
