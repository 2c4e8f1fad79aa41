"""`tfchat train`: tiny real runs on a text the test writes; the book's format; resume; bad input."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.checkpoint import expected_shapes, load_checkpoint
from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.sampling_params import SamplingParams

from support import ROOT  # noqa: E402

pytestmark = pytest.mark.slow
BOOK_H_PARAMS = {"d_model", "num_heads", "num_blocks", "context_length", "max_token_value", "dropout",
                 "learning_rate", "device", "batch_size", "max_iters", "eval_interval", "eval_iters", "TORCH_SEED"}
TINY = ["--d-model", "16", "--num-heads", "2", "--num-blocks", "1", "--context-length", "8",
        "--batch-size", "4", "--eval-iters", "2"]


@pytest.fixture
def corpus(tmp_path):
    words = ("sales customer value price offer deal trust listen need close follow product service team "
             "market budget call email meeting goal").split()
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))).capitalize() + "."
                 for _ in range(400)]
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(sentences), encoding="utf-8")
    return path


def train(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tfchat", "train", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)


def test_trains_and_writes_exactly_the_books_checkpoint(corpus, tmp_path):
    out = tmp_path / "model" / "model.ckpt"
    r = train(corpus, "--out", out, *TINY, "--max-iters", "6", "--eval-interval", "3")
    assert r.returncode == 0, r.stderr
    assert "step 6/6" in r.stderr and "val" in r.stderr
    raw = torch.load(out, weights_only=True)
    # The chapter's two keys, and beside them the text trained on (the book's inference.py reads only the two).
    assert set(raw) == {"model_state_dict", "h_params", "training_text"}
    assert raw["training_text"]["path"] == str(corpus.resolve())
    assert set(raw["h_params"]) == BOOK_H_PARAMS
    ckpt = load_checkpoint(out)
    shapes = {k: tuple(v.shape) for k, v in raw["model_state_dict"].items()}
    assert shapes == expected_shapes(ckpt.config)
    assert ckpt.config.vocab_size == max(Engine.load(out, "cpu").encoding.encode(corpus.read_text())) + 1
    # The book's own classes load it as they are, and tfchat generates from it.
    BookModel(ckpt.config).load_state_dict(raw["model_state_dict"])
    text = "".join(Engine.load(out, "cpu").generate("Sales", SamplingParams(temperature=0, max_new_tokens=5)))
    assert text


def test_resume_continues_from_the_side_file(corpus, tmp_path):
    out = tmp_path / "m.ckpt"
    assert train(corpus, "--out", out, *TINY, "--max-iters", "4", "--eval-interval", "2").returncode == 0
    first = torch.load(out, weights_only=True)["model_state_dict"]
    r = train(corpus, "--out", out, "--resume", "--max-iters", "8")
    assert r.returncode == 0, r.stderr
    assert "steps 4..8" in r.stderr
    side = torch.load(str(out) + ".optim", weights_only=True)
    assert side["step"] == 8
    second = torch.load(out, weights_only=True)["model_state_dict"]
    assert not torch.equal(first["model_out_linear_layer.weight"], second["model_out_linear_layer.weight"])


def test_ctrl_c_saves_a_whole_checkpoint_that_resumes(corpus, tmp_path):
    out = tmp_path / "m.ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tfchat", "train", str(corpus), "--out", str(out), *TINY,
                             "--max-iters", "1000000", "--eval-interval", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not (out.exists() and Path(str(out) + ".optim").exists()):
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoint appeared"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"--resume" in err and b"Traceback" not in err
    step = torch.load(str(out) + ".optim", weights_only=True)["step"]
    assert step >= 5
    load_checkpoint(out)  # whole, not half-written
    assert not list(tmp_path.glob("*.tmp"))
    r = train(corpus, "--out", out, "--resume", "--max-iters", str(step + 2))
    assert r.returncode == 0, r.stderr


def test_half_precision_weights_are_upcast_on_load(corpus, tmp_path):
    out = tmp_path / "half.ckpt"
    assert train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2", "--half").returncode == 0
    raw = torch.load(out, weights_only=True)
    assert raw["model_state_dict"]["model_out_linear_layer.weight"].dtype == torch.float16
    engine = Engine.load(out, "cpu")
    assert engine.model.out_weight.dtype == torch.float32


@pytest.mark.parametrize("make,needle", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("   \n"), "empty"),
    (lambda p: p.write_bytes(b"\x00\x01\x02binary"), "binary"),
    (lambda p: p.write_bytes("caf\xe9".encode("latin-1") * 50), "not UTF-8"),
    (lambda p: p.write_text("Too short to train on."), "too short"),
])
def test_bad_text_is_one_line_and_exit_2(tmp_path, make, needle):
    path = tmp_path / "input.txt"
    make(path)
    r = train(path, "--out", tmp_path / "m.ckpt", *TINY, "--max-iters", "2")
    assert r.returncode == 2 and needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("yaml_text,flags,needle", [
    ("d_model: 80\nbogus: 1\n", [], "unknown key 'bogus'"),
    (None, ["--d-model", "30", "--num-heads", "4"], "not divisible by num_heads"),
    (None, ["--dropout", "1.5"], "dropout must be in [0, 1)"),
    (None, ["--batch-size", "0"], "batch_size must be a positive integer"),
])
def test_impossible_configs_are_refused(corpus, tmp_path, yaml_text, flags, needle):
    extra = []
    if yaml_text is not None:
        config = tmp_path / "train.yaml"
        config.write_text(yaml_text)
        extra = ["--config", config]
    r = train(corpus, "--out", tmp_path / "m.ckpt", *extra, *flags)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_an_existing_checkpoint_is_never_overwritten_without_resume_or_force(corpus, tmp_path):
    out = tmp_path / "m.ckpt"
    assert train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2").returncode == 0
    before = out.read_bytes()
    r = train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already exists" in r.stderr
    assert "--force" in r.stderr and out.read_bytes() == before
    r = train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2", "--torch-seed", "7", "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() != before  # another seed, other weights: it was replaced


def test_the_shipped_model_is_safe_from_a_default_train_run(corpus):
    """`tfchat train text.txt` in a checkout writes model/model.ckpt by default: the shipped one is there."""
    shipped = ROOT / "model" / "model.ckpt"
    size = shipped.stat().st_size
    r = train(corpus, *TINY, "--max-iters", "2")
    assert r.returncode == 2 and "already exists" in r.stderr and shipped.stat().st_size == size


def test_resume_at_or_past_max_iters_says_so(corpus, tmp_path):
    out = tmp_path / "m.ckpt"
    assert train(corpus, "--out", out, *TINY, "--max-iters", "4", "--eval-interval", "2").returncode == 0
    before = out.read_bytes()
    for max_iters in ("4", "3"):
        r = train(corpus, "--out", out, "--resume", "--max-iters", max_iters)
        assert r.returncode == 2 and "already at step 4" in r.stderr and "nan" not in r.stderr.lower()
    assert out.read_bytes() == before


def test_a_damaged_optimizer_side_file_is_one_line(corpus, tmp_path):
    out = tmp_path / "m.ckpt"
    assert train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2").returncode == 0
    Path(str(out) + ".optim").write_bytes(b"garbage")
    r = train(corpus, "--out", out, "--resume", "--max-iters", "4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "optimizer state" in r.stderr


@pytest.mark.parametrize("dialect", ["RepositoryModel", "ScifiModel"])
def test_resuming_a_bare_state_dict_starts_a_fresh_optimizer_and_keeps_the_files_form(corpus, tmp_path, dialect):
    """The repository's scripts save bare state dicts with no optimizer: tfchat says so, and writes the file
    back as it found it, so the reader's own class still loads it."""
    from support import repository_models

    cls = getattr(repository_models, dialect)
    model = cls(16, 2, 1, 8, 100256, seed=1)
    out = tmp_path / "model-ckpt.pt"
    torch.save(model.state_dict(), out)
    keys = list(model.state_dict())
    r = train(corpus, "--out", out, "--resume", "--max-iters", "4", "--eval-interval", "2", "--batch-size", "4",
              "--eval-iters", "2")
    assert r.returncode == 0, r.stderr
    assert "a bare state dict with no optimizer state" in r.stderr
    assert "fresh AdamW optimizer, steps 0..4" in r.stderr
    saved = torch.load(out, weights_only=True)
    assert list(saved) == keys  # still a bare state dict, in its own names and order
    cls(16, 2, 1, 8, 100256, seed=2).load_state_dict(saved)  # strict: the reader's class takes it as it is
    embedding = "token_embedding_lookup_table.weight"
    assert not torch.equal(saved[embedding], model.state_dict()[embedding])
    # tfchat's side file now holds the optimizer: a second resume continues from step 4.
    r = train(corpus, "--out", out, "--resume", "--max-iters", "6")
    assert r.returncode == 0, r.stderr
    assert "steps 4..6" in r.stderr and "fresh" not in r.stderr
    assert list(torch.load(out, weights_only=True)) == keys


def test_resuming_the_books_own_checkpoint_without_a_side_file_keeps_its_h_params(corpus, make_checkpoint):
    out = make_checkpoint(d_model=16, num_heads=2, num_blocks=1, context_length=8, vocab_size=100256)
    r = train(corpus, "--out", out, "--resume", "--max-iters", "2", "--eval-interval", "2", "--eval-iters", "2")
    assert r.returncode == 0, r.stderr
    assert "with no optimizer state" in r.stderr and "steps 0..2" in r.stderr
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"model_state_dict", "h_params", "training_text"} and raw["h_params"]["d_model"] == 16
    r = train(corpus, "--out", out, "--resume", "--max-iters", "4", "--d-model", "32")
    assert r.returncode == 2 and "has d_model 16, not 32" in r.stderr


def test_training_text_from_a_fifo_is_refused_not_a_hang(tmp_path):
    fifo = tmp_path / "text.fifo"
    os.mkfifo(fifo)
    r = train(fifo, "--out", tmp_path / "m.ckpt", *TINY, "--max-iters", "2", timeout=60)
    assert r.returncode == 2 and "not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB filesystem of its own (tmpfs; needs root, as CI has), so a save really runs out of space."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(corpus, tiny_disk):
    out = tiny_disk / "m.ckpt"
    r = train(corpus, "--out", out, *TINY, "--max-iters", "2", "--eval-interval", "2")
    assert r.returncode == 2, r.stderr
    assert "the disk is full" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.splitlines()) <= 2
    assert sorted(p.name for p in tiny_disk.iterdir()) == []  # no .tmp left to fill the disk for the next run


def test_a_corpus_over_the_bound_is_one_line_before_a_byte_is_read(tmp_path):
    """Read whole and tokenized in memory: a corpus over 2 GiB is refused by its size (a sparse file here)."""
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as file:
        file.truncate(2 * 2**30 + 1)
    r = train(huge, "--out", tmp_path / "m.ckpt", *TINY, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "over the 2 GiB" in r.stderr


def test_full_vocabulary_takes_any_prompt_and_says_its_cost_while_the_books_rule_names_it(corpus, tmp_path):
    from tfchat.core.errors import PromptError

    unseen = "Photosynthesis and quantum chromodynamics"  # words the corpus never uses
    books, full = tmp_path / "books.ckpt", tmp_path / "full.ckpt"
    assert train(corpus, "--out", books, *TINY, "--max-iters", "2", "--eval-interval", "2").returncode == 0
    with pytest.raises(PromptError, match="tfchat train --full-vocabulary takes any text"):
        Engine.load(books, "cpu").generate(unseen, SamplingParams(temperature=0, max_new_tokens=3))
    r = train(corpus, "--out", full, *TINY, "--max-iters", "2", "--eval-interval", "2", "--full-vocabulary")
    assert r.returncode == 0, r.stderr
    seen = load_checkpoint(books).config.vocab_size
    assert load_checkpoint(full).config.vocab_size == 100256
    extra = (100256 - seen) * (2 * 16 + 1)  # an embedding row and an output row (and its bias) a token
    assert f"vocabulary 100,256, the tokenizer's whole; the text's own would be {seen:,}: {extra:,} more parameters" \
        in r.stderr
    text = "".join(Engine.load(full, "cpu").generate(unseen, SamplingParams(temperature=0, max_new_tokens=3)))
    assert text
    resumed = train(corpus, "--out", full, *TINY, "--max-iters", "4", "--resume", "--full-vocabulary")
    assert resumed.returncode == 2 and "a resumed model keeps its vocabulary" in resumed.stderr
