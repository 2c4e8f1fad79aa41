"""The headless CLI as a user runs it: a real process, real checkpoint, real tokenizer."""
import json
import os
import signal
import subprocess
import sys

import pytest
from support.cli import tfchat

from support import ROOT  # noqa: E402


def test_generate_streams_text_and_reports_stats(small_model):
    r = tfchat("generate", "The sales team", "--model", str(small_model), "--preset", "greedy",
               "--max-new-tokens", "12", "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["new_tokens"] == 12 and stats["prompt_tokens"] == 3 and stats["device"] == "cpu"
    assert stats["tokens_per_s"] > 0 and stats["ttft_s"] > 0


def test_generate_reads_the_prompt_from_stdin_and_is_deterministic_with_a_seed(small_model):
    args = ("generate", "--model", str(small_model), "--temperature", "0.9", "--seed", "5", "--max-new-tokens", "20")
    a = tfchat(*args, stdin="Customers often")
    b = tfchat(*args, stdin="Customers often")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.strip()


def test_model_from_environment_variable(small_model):
    r = tfchat("generate", "Hi", "--max-new-tokens", "3", env_extra={"TFCHAT_MODEL": str(small_model)})
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,needle", [
    (("generate", "x", "--model", "/nonexistent/m.ckpt"), "/nonexistent/m.ckpt: no such file"),
    (("generate", "x", "--preset", "nope"), "unknown preset 'nope'"),
    (("generate", "x", "--top-p", "3"), "top_p"),
    (("generate", "", "--max-new-tokens", "2"), "empty"),
])
def test_user_errors_are_one_line_and_exit_2(small_model, args, needle):
    r = tfchat(*args, "--model", str(small_model)) if "--model" not in args else tfchat(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_corrupt_model_is_one_line(tmp_path):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"\x80\x02not really a checkpoint")
    r = tfchat("info", "--model", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_info_lists_parameter_count_and_every_tensor(make_checkpoint):
    path = make_checkpoint(d_model=24, num_heads=3, num_blocks=2, context_length=8, vocab_size=100)
    r = tfchat("info", "--model", str(path))
    assert r.returncode == 0, r.stderr
    # 2*V*D + V + blocks*(2*2D + 3*D*D + D*D + D + 4D*D + 4D + D*4D + D) + 2D
    D, V = 24, 100
    per_block = 4 * D + 3 * D * D + D * D + D + 4 * D * D + 4 * D + 4 * D * D + D
    expected = 2 * V * D + V + 2 * per_block + 2 * D
    assert f"Model param size: {expected:,}" in r.stdout
    assert "transformer_blocks.1.mha.heads.2.Wv.weight: [8, 24] float32" in r.stdout
    assert "model_out_linear_layer.bias: [100] float32" in r.stdout


def test_ctrl_c_keeps_partial_output_and_exits_130(small_model):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tfchat", "generate", "Once upon", "--model", str(small_model),
                             "--max-new-tokens", "100000", "--temperature", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    first = proc.stdout.read(20)  # wait until text is streaming
    assert first
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted" in err and b"Traceback" not in err
    assert len(first + rest) > 20


def test_bench_prints_a_table_and_a_json_line(make_checkpoint):
    path = make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=3000)
    r = tfchat("bench", "--model", str(path), "--tokens", "8")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("book_tokens_per_s", "book_plain_process_tokens_per_s", "engine_tokens_per_s", "ratio",
                "ratio_vs_plain_process", "ratio_ceiling", "ttft_ms", "limit_tokens_per_s", "fraction_of_limit",
                "peak_memory_mb", "busy_engine_tokens_per_s", "busy_fraction_of_idle",
                "busy_engine_cropped_tokens_per_s", "engine_shift_tokens_per_s", "shift_fraction_of_in_window"):
        assert result[key] > 0
    assert result["threads"] == 1
    # The ceiling is the machine's read bandwidth (every core, and one), not one kernel's.
    assert result["read_bandwidth_gb_s"] >= result["read_bandwidth_one_core_gb_s"] > 0  # one reader at worst
    assert result["limit_tokens_per_s"] >= result["limit_one_core_tokens_per_s"] > 0
    # Rounded to 3 places: a tiny model stands at a few thousandths of its ceiling.
    assert result["fraction_of_limit"] == pytest.approx(result["engine_tokens_per_s"] / result["limit_tokens_per_s"],
                                                        abs=1e-3)
    assert "ceiling (weights read once per token)" in r.stdout
    # Which kernels run; a model this small stays on one reader (two would only add handovers).
    assert result["kernels"] == {"blocks": "float32 (MKL)", "output layer": "float32 (MKL, transposed)"}
    assert "readers_2_tokens_per_s" not in result
    assert "book loop" in r.stdout and "busy neighbour" in r.stdout and "window: shift" in r.stdout
    # The peer (transformers is in the test extra): the same work, timed in the same run.
    assert result["peer_tokens_per_s"] > 0 and result["peer_tfchat_tokens_per_s"] > 0
    assert result["peer_ratio"] == pytest.approx(result["peer_tfchat_tokens_per_s"] / result["peer_tokens_per_s"],
                                                 rel=0.02)
    assert "peer: transformers" in r.stdout
    # The same weights stored in float16 read half the bytes a token (the speed itself is the bench's figure).
    assert result["float16_bytes_per_token"] < 0.55 * result["float32_bytes_per_token"]
    assert result["float16_tokens_per_s"] > 0 and result["bfloat16_tokens_per_s"] > 0
    assert "stored as float16" in r.stdout
    help_text = tfchat("bench", "--help").stdout
    assert "random weights" in help_text and "shipped" not in help_text and "scifi-demo" in help_text
    assert tfchat("bench", "--config", "gpt4").returncode == 2


def test_model_resolution_order(make_checkpoint, tmp_path):
    shipped = ROOT / "model" / "model.ckpt"
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    # Nothing given, nothing in the working directory: the model tfchat ships, wherever it starts.
    r = tfchat("info", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert f"model: {shipped}" in r.stdout
    # ./model/model.ckpt in the working directory wins over the shipped one...
    local = elsewhere / "model"
    local.mkdir()
    make_checkpoint(name="x.ckpt").rename(local / "model.ckpt")
    assert "model: model/model.ckpt" in tfchat("info", cwd=elsewhere).stdout
    # ...$TFCHAT_MODEL over that, and --model over everything.
    env_model = make_checkpoint(name="env.ckpt")
    flag_model = make_checkpoint(name="flag.ckpt")
    assert f"model: {env_model}" in tfchat("info", cwd=elsewhere, env_extra={"TFCHAT_MODEL": str(env_model)}).stdout
    r = tfchat("info", "--model", str(flag_model), cwd=elsewhere, env_extra={"TFCHAT_MODEL": str(env_model)})
    assert f"model: {flag_model}" in r.stdout


def test_the_shipped_model_writes_english(tmp_path):
    r = tfchat("generate", "The key to a successful sale is", "--preset", "greedy", "--max-new-tokens", "40",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert len(words) >= 15
    # Mostly plain English words, as in the sales textbook it was trained on.
    plain = [w for w in words if w.strip(".,;:!?'\"()").isalpha() and w.isascii()]
    assert len(plain) / len(words) > 0.8, r.stdout


def test_the_app_refuses_an_unknown_preset_before_starting(small_model, tmp_path):
    r = tfchat("--model", str(small_model), "--preset", "nope", "--history", str(tmp_path / "h.sqlite3"))
    assert r.returncode == 2 and "unknown preset 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_a_piped_prompt_loses_only_its_trailing_newline(small_model):
    args = ("generate", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "2", "--stats")
    piped = tfchat(*args, stdin="Customers want\n")
    typed = tfchat(*args, "Customers want")
    assert json.loads(piped.stderr.splitlines()[-1])["prompt_tokens"] == 2
    assert piped.stdout == typed.stdout
    kept = tfchat(*args, stdin="Customers want\n\n")  # a paragraph break the user wrote stays
    assert json.loads(kept.stderr.splitlines()[-1])["prompt_tokens"] == 3


def test_an_empty_stdin_is_one_line_with_nothing_on_stdout(small_model):
    r = tfchat("generate", "--model", str(small_model), stdin="")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and "empty" in r.stderr


def test_stats_are_printed_after_ctrl_c(small_model):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tfchat", "generate", "Once upon", "--model", str(small_model),
                             "--max-new-tokens", "100000", "--temperature", "1", "--stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout.read(40)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    stats = json.loads(next(line for line in err.decode().splitlines() if line.startswith("{")))
    assert proc.returncode == 130 and stats["finish_reason"] == "stopped" and stats["new_tokens"] > 0


@pytest.mark.parametrize("args,needle", [
    pytest.param(["--device", "cuda"], "cuda", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this box has CUDA")),
    (["--model", "/nonexistent/model.ckpt"], "tfchat train"),
])
def test_the_app_checks_device_and_model_before_the_ui_opens(tmp_path, args, needle):
    r = tfchat(*args, "--history", str(tmp_path / "h.sqlite3"), timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and needle in r.stderr
    assert "\x1b[" not in r.stdout  # the UI never drew


def test_a_bad_training_flag_is_named_as_the_flag(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Buy now. " * 500)
    r = tfchat("train", str(text), "--out", str(tmp_path / "m.ckpt"), "--num-heads", "3")
    assert r.returncode == 2 and r.stderr.startswith("tfchat: --num-heads 3: d_model 80 is not divisible")
