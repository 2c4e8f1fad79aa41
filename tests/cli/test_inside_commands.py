"""`tfchat score` and `tfchat attention` as a user runs them, checked against the engine in this process."""
import json
import os
import math

import pytest

from tfchat.core.engine.in_process import Engine
from support.cli import tfchat

TEXT = "The customer wants value, and the sales team listens to every word they say before the deal is closed."


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT * 2, encoding="utf-8")
    return path


def test_score_jsonl_is_a_line_per_token_then_the_summary(small_model, text_file):
    run = tfchat("score", "--model", str(small_model), "--format", "jsonl", str(text_file))
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    *tokens, summary = lines
    engine = Engine.load(small_model, "cpu")
    ids = engine.encode(TEXT * 2)
    expected = engine.score(TEXT * 2)
    assert [t["id"] for t in tokens] == ids[1:]
    assert set(tokens[0]) == {"id", "token", "bytes", "logprob", "rank"}
    assert bytes(tokens[0]["bytes"]).decode() == tokens[0]["token"]
    assert all(abs(t["logprob"] - e.logprob) < 1e-5 and t["rank"] == e.rank for t, e in zip(tokens, expected.tokens))
    assert summary["tokens"] == len(ids) - 1
    assert abs(summary["loss"] - expected.loss) < 1e-5
    assert abs(summary["perplexity"] - math.exp(summary["loss"])) < 1e-2 * summary["perplexity"]


def test_score_reads_standard_input_and_prints_the_loss_in_text(small_model):
    run = tfchat("score", "--model", str(small_model), stdin=TEXT)
    assert run.returncode == 0, run.stderr
    assert "nats, perplexity" in run.stdout.splitlines()[-1]
    assert len(run.stdout.splitlines()) == len(Engine.load(small_model, "cpu").encode(TEXT))  # tokens-1, + summary


def test_score_compares_checkpoints_a_row_each_and_ablation_changes_the_loss(make_checkpoint, text_file):
    a, b = make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=1), \
        make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=2)
    run = tfchat("score", "--model", str(a), "--model", str(b), "--format", "jsonl", str(text_file))
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["model"] for r in rows] == [str(a), str(b)] and rows[0]["loss"] != rows[1]["loss"]
    off = tfchat("score", "--model", str(a), "--format", "jsonl", "--ablate", "0.1,1.2", str(text_file))
    loss_off = json.loads(off.stdout.splitlines()[-1])["loss"]
    expected = Engine.load(a, "cpu").score((TEXT * 2), ((0, 1), (1, 2))).loss
    assert abs(loss_off - expected) < 1e-5 and loss_off != rows[0]["loss"]


def test_attention_json_is_the_windows_matrix_rows_summing_to_one(small_model):
    prompt = "The customer wants value " * 3  # 15 tokens of a window of 32
    run = tfchat("attention", "--model", str(small_model), "--layer", "1", "--head", "2", "--format", "json", prompt)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    T = len(data["tokens"])
    assert data["layer"] == 1 and data["head"] == 2 and "".join(data["tokens"]) == prompt
    assert len(data["weights"]) == len(data["scores"]) == T and all(len(r) == T for r in data["weights"])
    for q, row in enumerate(data["weights"]):
        assert abs(sum(row) - 1) < 1e-5 and all(w == 0 for w in row[q + 1:])
    maps = Engine.load(small_model, "cpu").attention(prompt)
    flat = [w for row in data["weights"] for w in row]
    assert flat == pytest.approx([w for row in maps.weight_rows(1, 2) for w in row], abs=1e-6)


def test_attention_past_the_window_shows_the_last_context_length_tokens_as_a_heatmap(small_model):
    prompt = "The customer wants value and the team listens. " * 6
    run = tfchat("attention", "--model", str(small_model), "--layer", "0", "--head", "0", prompt)
    assert run.returncode == 0, run.stderr
    assert "32 tokens, queries down, keys across" in run.stdout
    rows = run.stdout.splitlines()[2:-1]
    assert len(rows) == 32 and rows[-1].rstrip().endswith(tuple("·░▒▓█"))
    assert "weight:" in run.stdout.splitlines()[-1]


@pytest.mark.parametrize("args,message", [
    (("attention", "--layer", "2", "--head", "0", "Hello there"), "layers 0-1 and heads 0-3"),
    (("attention", "--layer", "0", "--head", "4", "Hello there"), "layers 0-1 and heads 0-3"),
    (("score", "--ablate", "1-2"), "LAYER.HEAD"),
    (("score", "--ablate", "5.0"), "layers 0-1 and heads 0-3"),
    (("score", "/nonexistent/text.txt"), "cannot read it"),
])
def test_mistakes_are_one_line_and_exit_2(small_model, args, message, text_file):
    args = args + ((str(text_file),) if args[0] == "score" and "--ablate" in args else ())
    run = tfchat(*args, "--model", str(small_model))
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_text_that_is_not_utf8_or_too_short_is_one_line(small_model, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    run = tfchat("score", "--model", str(small_model), str(bad))
    assert run.returncode == 2 and "not UTF-8 text" in run.stderr
    run = tfchat("score", "--model", str(small_model), stdin="Hi")
    assert run.returncode == 2 and "at least two tokens" in run.stderr


def test_score_shows_progress_on_a_terminal_and_nothing_extra_when_piped(small_model, tmp_path):
    """A long text: a progress line (with its rate) on a terminal's standard error, cleared at the end; a
    piped standard error gets nothing; the summary states the throughput either way."""
    import pty
    import subprocess
    import sys

    from support import ROOT

    text = tmp_path / "long.txt"
    text.write_text("The customer listens, and the team answers what was asked. " * 300)
    main, terminal = pty.openpty()
    run = subprocess.run([sys.executable, "-m", "tfchat", "score", "--model", str(small_model), str(text)],
                         stdout=subprocess.PIPE, stderr=terminal, cwd=ROOT, timeout=300)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other side is closed: all is read
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert run.returncode == 0
    assert b"scoring: " in shown and b"tok/s" in shown and shown.endswith(b"\r\x1b[K")
    last = run.stdout.decode().splitlines()[-1]
    assert " tokens, loss " in last and " tok/s)" in last
    piped = tfchat("score", "--model", str(small_model), str(text))
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.splitlines()[-1].split(" (")[0] == last.split(" (")[0]
