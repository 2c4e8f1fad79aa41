"""A busy neighbour for benchmarks: what a shared box looks like to tfchat."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager


@contextmanager
def busy_neighbour():
    """Another process burning one core for as long as the block runs: a shared box."""
    # It checks that its parent is alive as it burns, so not even a SIGKILLed bench leaves it behind.
    burner = subprocess.Popen([sys.executable, "-c", f"import os\nwhile os.getppid() == {os.getpid()}: pass"])
    try:
        time.sleep(0.2)  # let it take its core
        yield
    finally:
        burner.kill()
        burner.wait()
