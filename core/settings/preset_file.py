"""Writing one preset into the user's presets file, as a person would edit it.

The file is edited as text, not dumped from a parsed copy: every other line (comments,
other presets, their order and quoting) stays as it was. A preset of the same name is
replaced only when the caller says so; the result is read back with the same loader as
at start-up before it replaces the file (atomically), so a save never leaves a file that
tfchat would refuse.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from tfchat.core.errors import PresetError
from tfchat.core.settings.presets import parse_presets_file
from tfchat.core.settings.sampling_params import PARAM_NAMES, SamplingParams

HEADER = ("# Your tfchat presets: each one changes the keys it gives (see the README's Presets).\n"
          "# tfchat adds a preset here on /preset save NAME; your comments and order are kept.\n")


def preset_lines(name: str, params: SamplingParams, description: str, indent: str) -> list[str]:
    """The preset as a block of YAML lines; every key written, so it reads the same after any edit to
    the built-ins. Strings and lists are written as JSON, which YAML reads as they are."""
    lines = [f"{indent}{name}:\n"]
    inner = indent * 2
    if description:
        lines.append(f"{inner}description: {json.dumps(description, ensure_ascii=False)}\n")
    values = params.as_dict()
    for key in PARAM_NAMES:
        value = values[key]
        if key == "stop":
            value = list(value)
        lines.append(f"{inner}{key}: {json.dumps(value, ensure_ascii=False)}\n")
    return lines


def save_preset(path: Path, name: str, params: SamplingParams, description: str = "",
                replace: bool = False) -> None:
    """Put preset `name` in the file at `path` (made if missing); refuse to touch another preset."""
    if not name or any(c.isspace() for c in name) or len(name) > 40 or name.startswith("#") or ":" in name:
        raise PresetError("a preset name is one word of at most 40 characters, without ':'")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text.strip():
        existing, _ = parse_presets_file(path, "user")  # a file it cannot read is refused here, untouched
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        start, indent = _presets_block(lines, path)
        block = _preset_block(lines, start, indent, name)
        if block is not None and not replace:
            raise PresetError(f"{path} already has a preset {name!r}; nothing written")
        if block is None and name in existing:
            raise PresetError(f"{path}: preset {name!r} is written in a way this cannot edit; nothing written")
        entry = preset_lines(name, params, description, indent)
        if block is not None:
            lines[block[0]:block[1]] = entry
        else:
            end = _block_end(lines, start)
            lines[end:end] = entry
    else:
        lines = [HEADER, "presets:\n", *preset_lines(name, params, description, "  ")]
    _write_checked(path, "".join(lines), name)


def _presets_block(lines: list[str], path: Path) -> tuple[int, str]:
    """The index of the line after `presets:`, and the indentation its entries use."""
    for number, line in enumerate(lines):
        if re.match(r"presets\s*:\s*(#.*)?$", line.rstrip("\n")):
            for entry in lines[number + 1:]:
                found = re.match(r"(\s+)\S", entry)
                if found and not entry.lstrip().startswith("#"):
                    return number + 1, found.group(1)
            return number + 1, "  "
    raise PresetError(f"{path}: no block 'presets:' this can add to; nothing written")


def _block_end(lines: list[str], start: int) -> int:
    """Where the `presets:` block ends: the next line at the left margin that is not a comment."""
    end = start
    for number in range(start, len(lines)):
        line = lines[number]
        if line.strip() and not line[0].isspace() and not line.startswith("#"):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            end = number + 1
    return end


def _preset_block(lines: list[str], start: int, indent: str, name: str) -> tuple[int, int] | None:
    """The lines [first, last) of preset `name` written in block style at `indent`, if there."""
    head = re.compile(rf"{re.escape(indent)}(['\"]?){re.escape(name)}\1\s*:\s*(#.*)?$")
    end = _block_end(lines, start)
    for number in range(start, end):
        if head.match(lines[number].rstrip("\n")):
            last = number + 1
            while last < end and (not lines[last].strip() or _indent(lines[last]) > len(indent)):
                last += 1
            while last > number + 1 and not lines[last - 1].strip():
                last -= 1  # blank lines after it belong to what follows
            return number, last
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _write_checked(path: Path, text: str, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".presets-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        presets, warnings = parse_presets_file(Path(temporary), "user")
        about_it = [w for w in warnings if f"preset {name!r}" in w]  # the file's other problems are its own
        if name not in presets or about_it:
            raise PresetError(f"the saved preset would not read back ({(about_it or ['it is missing'])[0]}); "
                              "nothing written")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
