"""What a user pipes or names is read within a stated bound, in flat memory, and a signal ends the read:
standard input and --prompts-file for generate, the text for score, from /dev/zero, a directory, or a pipe
that never writes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from support import ROOT
from support.processes import wait_with_peak

BOUND_MB = 64
# torch and the model, plus one bound's worth of input held while it is counted: never the whole source.
MEMORY_CEILING_MB = 900


def tfchat_process(*args, stdin=subprocess.DEVNULL):
    return subprocess.Popen([sys.executable, "-m", "tfchat", *map(str, args)], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def finished(process, timeout=60):
    try:
        code, peak = wait_with_peak(process)
    finally:
        if process.poll() is None:
            process.kill()
    return code, process.stderr.read().decode(), peak


@pytest.mark.parametrize("command", [["generate"], ["score"]])
def test_standard_input_from_dev_zero_stops_at_the_bound_in_flat_memory(small_model, command):
    with open("/dev/zero", "rb") as zeros:
        process = tfchat_process(*command, "--model", small_model, stdin=zeros)
        code, err, peak = finished(process)
    assert code == 2 and err.strip() == f"tfchat: standard input: more than {BOUND_MB} MiB; give a shorter text"
    assert peak < MEMORY_CEILING_MB


@pytest.mark.parametrize("args", [["generate", "--prompts-file", "/dev/zero"], ["score", "/dev/zero"]])
def test_a_named_endless_file_stops_at_the_bound(small_model, args):
    code, err, peak = finished(tfchat_process(*args, "--model", small_model))
    assert code == 2 and f"/dev/zero: more than {BOUND_MB} MiB" in err and len(err.strip().splitlines()) == 1
    assert peak < MEMORY_CEILING_MB


@pytest.mark.parametrize("args", [["generate", "--prompts-file", "{dir}"], ["score", "{dir}"]])
def test_a_directory_is_named_as_one(small_model, tmp_path, args):
    args = [a.format(dir=tmp_path) for a in args]
    code, err, _ = finished(tfchat_process(*args, "--model", small_model))
    assert code == 2 and err.strip().endswith(f"{tmp_path}: is a directory, not a file of text")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_read_that_waits_for_a_writer(small_model, tmp_path, signum, code):
    """A FIFO nobody writes to (open blocks) and standard input that never ends (read blocks)."""
    fifo = tmp_path / "prompts"
    os.mkfifo(fifo)
    waiting_open = tfchat_process("generate", "--model", small_model, "--prompts-file", fifo)
    writer = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)
    waiting_read = tfchat_process("generate", "--model", small_model, stdin=writer.stdout)
    try:
        time.sleep(3)  # both are waiting now
        for process in (waiting_open, waiting_read):
            assert process.poll() is None
            sent = time.monotonic()
            process.send_signal(signum)
            assert process.wait(timeout=5) == code
            assert time.monotonic() - sent < 1.5
    finally:
        writer.kill()
        for process in (waiting_open, waiting_read):
            if process.poll() is None:
                process.kill()


@pytest.mark.parametrize("after_s", [1.0, 2.0])
def test_sigterm_ends_generate_within_a_second_while_it_tokenizes_a_long_prompt(small_model, tmp_path, after_s):
    """Tokenizing 40 MB takes seconds in the tokenizer's native code; the signal does not wait for it."""
    prompt = tmp_path / "long.txt"
    prompt.write_text("the customer listens and the team answers what was asked. " * 700_000)
    with open(prompt, "rb") as given:
        process = tfchat_process("generate", "--model", small_model, "--max-new-tokens", "3", stdin=given)
        try:
            time.sleep(after_s)
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 143
            assert time.monotonic() - sent < 1.0
        finally:
            if process.poll() is None:
                process.kill()
