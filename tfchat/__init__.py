"""tfchat: a terminal chat for the GPT models of 'Transformer from scratch'.

The one import name: `tfchat.core` (the headless engine, the commands) and `tfchat.tui` (the app
and the command line). A wheel puts core/ and tui/ inside this package; a checkout keeps them
beside it, at the repository's top, so there this package also looks one folder up.
"""
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not (_HERE / "core").is_dir() and (_HERE.parent / "core" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))  # noqa: F821 - a package's own __path__
