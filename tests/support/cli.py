"""The `tfchat` command run as a user runs it, in a fresh process."""
import os
import subprocess
import sys

from support import ROOT


def tfchat(*args, stdin=None, env_extra=None, cwd=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "tfchat", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=cwd or ROOT, timeout=timeout)
