"""A missing extra is named with the command that adds it to this very install (tfchat is not on PyPI)."""
import os
import subprocess
import sys

from support import ROOT
from tfchat.core.system.install_hint import in_pipx


def test_serve_without_its_extra_from_a_clone_says_to_install_the_clones_extra(tmp_path):
    code = ("import sys; sys.modules['uvicorn'] = None; from tfchat.tui.cli import main; "
            "sys.exit(main(['serve', '--port', '0']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().endswith(f"tfchat serve needs Starlette and uvicorn: pip install -e '{ROOT}[serve]'")


def test_a_pipx_environment_is_told_from_a_plain_one():
    assert in_pipx("/home/ana/.local/share/pipx/venvs/tfchat")
    assert in_pipx("/opt/pipx/venvs/tfchat")  # $PIPX_HOME elsewhere
    assert not in_pipx("/home/ana/clone/.venv") and not in_pipx("/usr")
