"""A corpus of crafted and broken input, each run through the real `tfchat` command.

Every case must end in exactly one line on stderr, exit code 2, no traceback,
within a time and memory ceiling: a file claiming 10^11 elements must be
refused before anything is materialised, not after 8 GB.
"""
from __future__ import annotations

import io
import os
import pickle
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from support.processes import PeakMemory, wait_with_peak
from support.reference import random_book_checkpoint

from support import ROOT  # noqa: E402
MEMORY_CEILING_MB = 900  # a small model's run takes ~400 MB, most of it torch itself
TIME_CEILING_S = 60


def run_tfchat(args, stdin: bytes = b"", env: dict | None = None, timeout: float = TIME_CEILING_S):
    """Run `python -m tfchat ARGS`; returns (exit code, stdout, stderr, peak RSS in MB, seconds)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        given.write(stdin)
        given.seek(0)
        start = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "tfchat", *map(str, args)], stdin=given, stdout=out,
                                   stderr=err, env=full_env, cwd=ROOT)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        code, peak_mb = wait_with_peak(process)
        timer.cancel()
        elapsed = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), peak_mb, elapsed


def _save(directory: Path, name: str, obj) -> Path:
    path = directory / name
    torch.save(obj, path)
    return path


def _small(**h_params) -> dict:
    ckpt = random_book_checkpoint(16, 2, 1, 8, 300, seed=3)
    ckpt["h_params"].update(h_params)
    return ckpt


def _with_tensor(key: str, tensor) -> dict:
    ckpt = _small()
    ckpt["model_state_dict"][key] = tensor
    return ckpt


EMBEDDING = "token_embedding_lookup_table.weight"


def build_corpus(d: Path) -> dict[str, tuple[list, bytes, dict, str]]:
    """name -> (tfchat arguments, standard input, environment, a word the one line must contain)."""
    cases: dict[str, tuple[list, bytes, dict, str]] = {}
    good = _save(d, "good.ckpt", _small())
    english = _save(d, "english.ckpt", random_book_checkpoint(16, 2, 1, 8, 100256, seed=4))

    def checkpoint(name, obj, needle, command="info"):
        path = _save(d, name + ".ckpt", obj)
        argv = ["info", "--model", path] if command == "info" else ["generate", "--model", path, "Hi"]
        cases["ckpt-" + name] = (argv, b"", {}, needle)

    # h_params claiming absurd sizes: refused before anything is built.
    checkpoint("blocks-1e8", _small(num_blocks=10**8), "num_blocks")
    checkpoint("heads-2e26", _small(num_heads=2**26), "num_heads")
    checkpoint("window-2e28", _small(context_length=2**28), "context_length")
    checkpoint("d-model-1e9", _small(d_model=10**9), "d_model")
    checkpoint("vocab-1e12", _small(max_token_value=10**12), "max_token_value")
    checkpoint("bounds-but-no-memory", _small(d_model=16384, num_blocks=256, context_length=65536), "GiB")
    checkpoint("h-param-string", _small(d_model="80"), "d_model")
    checkpoint("h-param-float", _small(num_heads=2.0), "num_heads")
    checkpoint("h-param-bool", _small(num_blocks=True), "num_blocks")
    checkpoint("h-param-negative", _small(context_length=-8), "context_length")
    checkpoint("h-params-missing-key", {"model_state_dict": _small()["model_state_dict"],
                                        "h_params": {"d_model": 16}}, "lacks")
    # Tensors that are not what they claim.
    checkpoint("expand-1e11", _with_tensor(EMBEDDING, torch.zeros(1, 1).expand(300, 16)), "stores")
    big = random_book_checkpoint(16, 2, 1, 8, 300, seed=3)
    big["h_params"]["max_token_value"] = 2**20
    big["model_state_dict"][EMBEDDING] = torch.zeros(1, 1).expand(2**20, 16)
    checkpoint("expand-million-rows", big, "token_embedding_lookup_table")
    checkpoint("float8", _with_tensor(EMBEDDING, torch.zeros(300, 16).to(torch.float8_e4m3fn)), "float8")
    checkpoint("int-weights", _with_tensor(EMBEDDING, torch.zeros(300, 16, dtype=torch.int32)), "int32")
    checkpoint("complex", _with_tensor(EMBEDDING, torch.zeros(300, 16, dtype=torch.complex64)), "complex64")
    checkpoint("sparse", _with_tensor(EMBEDDING, torch.zeros(300, 16).to_sparse()), "sparse")
    checkpoint("meta", _with_tensor(EMBEDDING, torch.empty(300, 16, device="meta")), EMBEDDING)
    checkpoint("not-a-tensor", _with_tensor(EMBEDDING, [[0.0] * 16] * 300), "not a tensor")
    checkpoint("wrong-shape", _with_tensor(EMBEDDING, torch.zeros(299, 16)), "shape")
    checkpoint("nan-weights", _with_tensor(EMBEDDING, torch.full((300, 16), float("nan"))), "NaN")
    missing = _small()
    del missing["model_state_dict"]["model_out_linear_layer.bias"]
    checkpoint("missing-tensor", missing, "missing")
    checkpoint("top-level-list", [1, 2, 3], "not a model checkpoint")
    # Bare state dicts (the repository's form): the shape is read off the tensors, so they must not lie either.
    bare = dict(_small()["model_state_dict"])
    checkpoint("bare-empty", {}, "empty dict")
    checkpoint("bare-foreign", {"transformer.wte.weight": torch.zeros(4, 4)}, "none of the book's layouts")
    checkpoint("bare-no-mask", {k: v for k, v in bare.items() if not k.endswith(".mask")}, "missing")
    checkpoint("bare-expand", {**bare, EMBEDDING: torch.zeros(1, 1).expand(300, 16)}, "stores")
    checkpoint("bare-rows", {**bare, EMBEDDING: torch.zeros(1, 1).expand(2**20, 16)}, "rows and the output layer")
    checkpoint("bare-window-2e17", {**bare, "transformer_blocks.0.mha.heads.0.mask": torch.zeros(1).expand(2**17, 2**17)},
               "context_length")
    checkpoint("bare-heads-gap", {**bare, "transformer_blocks.0.mha.heads.99.Wq.weight": torch.zeros(8, 16)},
               "unexpected")
    checkpoint("bare-vector-embedding", {**bare, EMBEDDING: torch.zeros(16)}, "matrices")
    checkpoint("bare-int-keys", {1: torch.zeros(2)}, "not a model checkpoint")
    checkpoint("h-params-not-dict", {"model_state_dict": {}, "h_params": [1]}, "dicts")
    checkpoint("vocab-beyond-tokenizer", random_book_checkpoint(16, 2, 1, 8, 200_000, seed=1),
               "cl100k_base", command="generate")
    overflow = random_book_checkpoint(16, 2, 1, 8, 100256, seed=5)
    overflow["model_state_dict"]["model_out_linear_layer.weight"].fill_(3e38)  # finite, but the logits are not
    checkpoint("logits-overflow", overflow, "not finite", command="generate")
    # A score of such a model is no number: refused as generate refuses, never "loss nan" or a bare NaN in jsonl.
    overflowing = _save(d, "score-overflow.ckpt", overflow)
    for form in ("text", "jsonl"):
        cases[f"score-logits-overflow-{form}"] = (["score", "--model", overflowing, "--format", form, "-"],
                                                  b"Hello there, world, and hello again", {}, "not finite")

    # Files that are not checkpoints at all.
    def raw_file(name, data: bytes, needle):
        path = d / name
        path.write_bytes(data)
        cases["file-" + name] = (["info", "--model", path], b"", {}, needle)

    good_bytes = good.read_bytes()
    raw_file("truncated.ckpt", good_bytes[: len(good_bytes) // 2], "truncated.ckpt")
    raw_file("empty.ckpt", b"", "empty.ckpt")
    raw_file("random.ckpt", os.urandom(4096), "random.ckpt")
    raw_file("text.ckpt", b"this is not a checkpoint\n" * 10, "text.ckpt")
    raw_file("raw-pickle-truncated.ckpt", pickle.dumps({"a": list(range(100))})[:-20], "raw-pickle-truncated")
    raw_file("pickle-unknown-opcode.ckpt", b"\x80\x02\xff\xff\xff.", "pickle-unknown-opcode")
    raw_file("pickled-code.ckpt", pickle.dumps(os.system, protocol=2), "Python code")
    raw_file("pickle-protocol-5.ckpt", pickle.dumps({"a": 1}, protocol=5), "pickle-protocol-5")
    checkpoint("zip-pickled-code", {"model_state_dict": {}, "h_params": {}, "hook": os.system}, "Python code")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (64 * 2**20))  # 64 MB from a few KB
    raw_file("zip-bomb.ckpt", zipped.getvalue(), "expand")
    broken_zip = io.BytesIO()
    with zipfile.ZipFile(broken_zip, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02garbage that is not a pickle")
        archive.writestr("archive/version", b"3\n")
    raw_file("zip-garbage-pickle.ckpt", broken_zip.getvalue(), "zip-garbage-pickle")
    cases["file-directory"] = (["info", "--model", d], b"", {}, "directory")
    cases["file-missing"] = (["info", "--model", d / "nope.ckpt"], b"", {}, "no such file")
    fifo = d / "fifo.ckpt"
    os.mkfifo(fifo)
    cases["file-fifo"] = (["info", "--model", fifo], b"", {}, "is a named pipe (FIFO), not a regular file")

    # Generation settings that would give NaN probabilities, overflow, or allocate without bound.
    def generate(name, extra, needle, stdin=b"", env=None, model=english):
        cases["generate-" + name] = (["generate", "--model", model, *extra], stdin, env or {}, needle)

    generate("seed-beyond-64-bits", ["--seed", str(2**64), "Hi"], "seed")
    generate("seed-negative", ["--seed", "-1", "Hi"], "seed")
    generate("temperature-denormal", ["--temperature", "1e-45", "Hi"], "temperature")
    generate("temperature-nan", ["--temperature", "nan", "Hi"], "temperature")
    generate("temperature-inf", ["--temperature", "inf", "Hi"], "temperature")
    generate("penalty-1e-300", ["--repetition-penalty", "1e-300", "Hi"], "repetition_penalty")
    generate("penalty-huge", ["--repetition-penalty", "1e300", "Hi"], "repetition_penalty")
    generate("top-p-zero", ["--top-p", "0", "Hi"], "top_p")
    generate("top-k-negative", ["--top-k", "-3", "Hi"], "top_k")
    generate("max-new-tokens-typo", ["--max-new-tokens", str(10**12), "Hi"], "1,000,000 (0: until stopped)")
    generate("max-new-tokens-negative", ["--max-new-tokens", "-1", "Hi"], "max_new_tokens")
    generate("threads-zero", ["--threads", "0", "Hi"], "threads")
    generate("threads-env-word", ["Hi"], "TFCHAT_THREADS", env={"TFCHAT_THREADS": "many"})
    generate("unknown-preset", ["--preset", "nope", "Hi"], "nope")
    generate("empty-prompt", [""], "empty")
    generate("stdin-not-utf8", [], "UTF-8", stdin=b"\xff\xfe\xfa")
    generate("prompt-outside-vocabulary", ["Hello there"], "vocabulary", model=good)

    # Training settings.
    text = d / "text.txt"
    text.write_text("The customer buys. " * 400)
    bomb = d / "bomb.yaml"
    bomb.write_text(alias_bomb())
    cases["train-config-alias-bomb"] = (["train", text, "--out", d / "t.ckpt", "--config", bomb], b"", {},
                                        "aliases")
    deep = d / "deep.yaml"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    cases["train-config-deep"] = (["train", text, "--out", d / "t.ckpt", "--config", deep], b"", {}, "deep.yaml")

    # History databases that cannot be used.
    def history(name, make, needle):
        path = d / name
        make(path)
        cases["history-" + name] = (["history", "--history", path], b"", {}, needle)

    history("corrupt.sqlite3", lambda p: p.write_bytes(os.urandom(8192)), "corrupt.sqlite3")
    history("foreign.sqlite3", _foreign_schema, "not tfchat's")
    history("directory.sqlite3", lambda p: p.mkdir(), "directory.sqlite3")
    return cases


def alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs' in YAML: a few hundred bytes, 9^9 strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _foreign_schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE exchanges (id INTEGER PRIMARY KEY, body BLOB)")


# Built once, at collection, so each case is its own test; removed when the session ends.
_CORPUS_DIR = tempfile.TemporaryDirectory(prefix="tfchat-corpus-")
CORPUS = build_corpus(Path(_CORPUS_DIR.name))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_input_is_one_line_and_exit_2(name):
    args, stdin, env, needle = CORPUS[name]
    code, out, err, peak_mb, seconds = run_tfchat(args, stdin, env)
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}; stderr: {err}"
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("tfchat: ") and len(err) <= 320
    assert needle in err, err
    assert peak_mb < MEMORY_CEILING_MB, f"{peak_mb:.0f} MB"
    assert seconds < TIME_CEILING_S


def test_the_corpus_is_large():
    assert len(CORPUS) >= 40


def _user_presets(tmp_path: Path, text: str) -> dict:
    """An environment whose user presets file holds `text`."""
    config = tmp_path / "config"
    (config / "tfchat").mkdir(parents=True)
    (config / "tfchat" / "presets.yaml").write_text(text)
    return {"XDG_CONFIG_HOME": str(config), "XDG_DATA_HOME": str(tmp_path / "data")}


BAD_PRESET_FILES = {
    "alias-bomb": (alias_bomb(), "aliases counted in full"),
    "deep-brackets": ("presets: " + "[" * 100_000 + "]" * 100_000 + "\n", "presets.yaml"),
    "fifty-megabytes": ("presets:\n" + "# padding\n" * (5 * 2**20), "larger than"),
    "not-yaml": ("presets: {greedy: [1,\n", "not valid YAML"),
    "wrong-shape": ("- a list\n", "top-level mapping"),
    "binary": ("\udcff", "presets.yaml"),  # written with surrogateescape below: not UTF-8
    "5000-digit-number": ("presets:\n  big:\n    max_new_tokens: " + "9" * 5000 + "\n", "a number of 5,000"),
    "overflowing-float": ("presets:\n  big:\n    temperature: " + "1" * 400 + ".5\n", "a number of 402"),
}


@pytest.mark.parametrize("name", sorted(BAD_PRESET_FILES))
def test_a_bad_user_presets_file_is_one_warning_and_the_built_ins_still_work(tmp_path, name):
    text, needle = BAD_PRESET_FILES[name]
    env = _user_presets(tmp_path, "")
    target = Path(env["XDG_CONFIG_HOME"]) / "tfchat" / "presets.yaml"
    target.write_bytes(text.encode("utf-8", "surrogateescape"))
    model = _save(tmp_path, "m.ckpt", random_book_checkpoint(16, 2, 1, 8, 100256, seed=4))
    code, out, err, peak_mb, seconds = run_tfchat(
        ["generate", "--model", model, "--preset", "greedy", "--max-new-tokens", "3", "Hi"], env=env)
    assert code == 0 and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("tfchat: warning: ") and str(target) in line and needle in line and len(line) < 400
    assert peak_mb < MEMORY_CEILING_MB and seconds < 30


def test_one_bad_preset_skips_only_itself_and_duplicate_keys_are_warned(tmp_path):
    env = _user_presets(tmp_path, "presets:\n"
                                  "  good:\n    temperature: 0\n    max_new_tokens: 3\n"
                                  "  broken:\n    temperature: hot\n"
                                  "  twice:\n    top_k: 5\n    top_k: 7\n")
    model = _save(tmp_path, "m.ckpt", random_book_checkpoint(16, 2, 1, 8, 100256, seed=4))
    code, out, err, _, _ = run_tfchat(["generate", "--model", model, "--preset", "good", "Hi"], env=env)
    assert code == 0, err
    warnings = err.splitlines()
    assert len(warnings) == 2
    assert "preset 'broken'" in warnings[1] and "temperature" in warnings[1] and "skipped" in warnings[1]
    assert "'top_k' appears twice at line 9" in warnings[0]
    code, _, err, _, _ = run_tfchat(["generate", "--model", model, "--preset", "twice", "--max-new-tokens", "1",
                                     "--stats", "Hi"], env=env)
    assert code == 0 and '"new_tokens": 1' in err


def test_max_new_tokens_0_streams_until_stopped_in_bounded_memory(tmp_path):
    """No limit (0) streams until Ctrl+C, in bounded memory (10^13 used to allocate the sequence up front)."""
    model = _save(tmp_path, "m.ckpt", random_book_checkpoint(16, 2, 1, 8, 100256, seed=4))
    process = subprocess.Popen([sys.executable, "-m", "tfchat", "generate", "--model", str(model),
                                "--max-new-tokens", "0", "--temperature", "1", "Hi"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    peak = PeakMemory(process.pid)
    try:
        received = b""
        deadline = time.monotonic() + 30
        while len(received) < 5_000 and time.monotonic() < deadline:
            received += process.stdout.read1(4096)  # over a thousand tokens: the 8-token buffer wraps often
        assert len(received) >= 5_000
    finally:
        process.send_signal(2)  # Ctrl+C
        process.stdout.read()
        process.wait()
    assert process.returncode == 130
    assert peak.result() < MEMORY_CEILING_MB
