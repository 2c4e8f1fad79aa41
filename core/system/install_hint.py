"""How to add one of tfchat's optional extras, in the command that works for how this tfchat was installed.

A clone installed with `pip install -e .` takes the extra from the clone; a pipx install gets the packages
injected into its own environment; a plain `pip install .` gets the packages themselves. (tfchat is not on
PyPI, so `pip install 'tfchat[serve]'` would find nothing.)
"""
from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
from pathlib import Path

import tfchat.core

# What each extra holds, should the installed metadata be missing (run from a checkout never installed).
_EXTRAS = {"serve": ["starlette", "uvicorn"], "export": ["transformers", "safetensors"]}


def checkout_root() -> Path | None:
    """The clone tfchat runs from, or None for an installed wheel."""
    root = Path(tfchat.core.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "core").is_dir() else None


def extra_packages(extra: str) -> list[str]:
    """The requirements the extra adds, as the installed metadata lists them (`starlette>=0.37`)."""
    try:
        requirements = importlib.metadata.requires("tfchat") or []
    except importlib.metadata.PackageNotFoundError:
        return list(_EXTRAS[extra])
    marker = re.compile(rf"""^\s*(.+?)\s*;\s*extra\s*==\s*["']{re.escape(extra)}["']\s*$""")
    found = [match.group(1) for match in map(marker.match, requirements) if match]
    return found or list(_EXTRAS[extra])


def in_pipx(prefix: str | None = None) -> bool:
    """Whether this interpreter is a pipx environment (~/.local/share/pipx/venvs/tfchat, or $PIPX_HOME's)."""
    parts = Path(prefix or sys.prefix).parts
    return "venvs" in parts and any("pipx" in part for part in parts)


def install_command(extra: str) -> str:
    """The one command that adds `extra` here."""
    root = checkout_root()
    if root is not None:
        return f"pip install -e {shlex.quote(f'{root}[{extra}]')}"
    packages = " ".join(shlex.quote(package) for package in extra_packages(extra))
    return f"pipx inject tfchat {packages}" if in_pipx() else f"pip install {packages}"
