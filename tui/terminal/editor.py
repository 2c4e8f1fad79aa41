"""Editing the prompt in the user's $VISUAL or $EDITOR, as shells and git do."""
from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from textual.app import App, SuspendNotSupported


def editor_command() -> list[str]:
    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def edit_text(app: App, text: str) -> tuple[str | None, str | None]:
    """(the edited text, None), or (None, why not). The app is suspended while the editor runs."""
    command = editor_command()
    fd, name = tempfile.mkstemp(prefix="tfchat-prompt-", suffix=".txt")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n" if text else "")  # a text file ends with a newline; taken off again below
        with app.suspend():
            result = subprocess.run([*command, str(path)])
        if result.returncode != 0:
            return None, f"{command[0]} exited with status {result.returncode}; the prompt is unchanged"
        edited = path.read_text(encoding="utf-8", errors="replace")
    except SuspendNotSupported:
        return None, "this terminal cannot hand the screen to an editor"
    except OSError as exc:
        return None, f"cannot run the editor {' '.join(command)!r}: {exc.strerror or exc}"
    finally:
        path.unlink(missing_ok=True)
    # Editors end a file with a newline the user did not type as part of the prompt.
    return (edited[:-1] if edited.endswith("\n") else edited), None
