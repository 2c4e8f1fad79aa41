"""`tfchat overlap`, `generate --corpus`, `score --corpus` and what `tfchat train` records, run as a user runs
them; the index cache reused and rebuilt; bad corpora in one line."""
import json
import os
import random

import pytest

from support.cli import tfchat
from tfchat.core.corpus.corpus_text import check_corpus_file
from tfchat.core.corpus.training_text import TrainingText
from tfchat.core.engine.tokenizer import load_encoding
from tfchat.core.errors import CorpusError

WORDS = ("sales customer value price offer deal trust listen need close follow product service team market budget "
         "call email meeting goal").split()


@pytest.fixture
def corpus_file(tmp_path):
    """A text of many short lines: a phrase a reader would recite sits on line 41."""
    rng = random.Random(3)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "." for _ in range(80)]
    lines[40] = "Every great salesperson listens twice as much as they speak, and remembers every name."
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_overlap_json_names_the_copied_span_its_count_and_line(corpus_file, small_model):
    text = "I think that every great salesperson listens twice as much as they speak, and forgets nothing."
    r = tfchat("overlap", "--model", str(small_model), "--corpus", str(corpus_file), "--json", text)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    ids = load_encoding().encode(text)
    [span] = found["spans"]
    assert set(found) == {"tokens", "min_tokens", "spans", "copied_fraction", "longest"}
    assert found["tokens"] == len(ids) and found["min_tokens"] == 8
    assert span["text"] == " great salesperson listens twice as much as they speak, and"
    assert load_encoding().decode(ids[span["start"]:span["end"]]) == span["text"]
    assert span["occurrences"] == 1 and span["line"] == 41
    assert found["longest"] == span["end"] - span["start"]
    assert found["copied_fraction"] == pytest.approx((span["end"] - span["start"]) / len(ids))
    plain = tfchat("overlap", "--model", str(small_model), "--corpus", str(corpus_file), "--min-tokens", "30",
                   stdin=text)  # the text from standard input; no span that long
    assert plain.returncode == 0 and "nothing copied: no run of 30+ tokens" in plain.stdout


def test_the_index_is_cached_reused_and_rebuilt_when_the_text_changes(corpus_file):
    encoding = load_encoding()
    first = TrainingText.open(corpus_file, encoding)
    again = TrainingText.open(corpus_file, encoding)
    assert first.loaded.built and not again.loaded.built and again.loaded.folder == first.loaded.folder
    assert again.index.tokens == first.index.tokens and again.index.suffixes == first.index.suffixes
    corpus_file.write_text(corpus_file.read_text() + "A new closing line.\n")
    changed = TrainingText.open(corpus_file, encoding)
    assert changed.loaded.built and changed.loaded.folder != first.loaded.folder
    assert len(changed.index) > len(first.index)
    (changed.loaded.folder / "suffixes.i32").write_bytes(b"\x00" * 8)  # damaged: built again, not trusted
    assert TrainingText.open(corpus_file, encoding).loaded.built


def test_train_records_its_text_and_overlap_finds_it_then_says_when_it_moved_or_changed(corpus_file, tmp_path):
    out = tmp_path / "m.ckpt"
    trained = tfchat("train", str(corpus_file), "--out", str(out), "--d-model", "16", "--num-heads", "2",
                     "--num-blocks", "1", "--context-length", "8", "--batch-size", "4", "--eval-iters", "1",
                     "--max-iters", "1", "--eval-interval", "1", timeout=300)
    assert trained.returncode == 0, trained.stderr
    import torch
    record = torch.load(out, weights_only=True)["training_text"]
    assert record["path"] == str(corpus_file.resolve()) and len(record["sha256"]) == 64
    found = tfchat("overlap", "--model", str(out), "--json", "Every great salesperson listens twice as much")
    assert found.returncode == 0 and json.loads(found.stdout)["spans"], found.stderr
    corpus_file.write_text("Something else.\n")
    changed = tfchat("overlap", "--model", str(out), "x")
    assert changed.returncode == 2 and "changed since the model was trained on it" in changed.stderr
    corpus_file.unlink()
    moved = tfchat("overlap", "--model", str(out), "x")
    assert moved.returncode == 2 and "which is not there any more" in moved.stderr
    assert "--corpus FILE" in moved.stderr and "Traceback" not in moved.stderr


def test_generate_and_score_add_the_copied_share_and_the_longest_span(corpus_file, small_model, tmp_path):
    generated = tfchat("generate", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "6",
                       "--corpus", str(corpus_file), "--stats", "Every great salesperson")
    assert generated.returncode == 0, generated.stderr
    stats = json.loads(generated.stderr.strip().splitlines()[-1])
    assert 0 <= stats["copied_fraction"] <= 1 and isinstance(stats["longest"], int)
    text = tmp_path / "t.txt"
    text.write_text("Every great salesperson listens twice as much as they speak, and remembers every name.")
    scored = tfchat("score", "--model", str(small_model), "--corpus", str(corpus_file), str(text))
    assert scored.returncode == 0, scored.stderr
    # All 17 tokens but the last: the file ends in '.', where the corpus has the token '.\n'.
    assert scored.stdout.strip().splitlines()[-1].endswith(", 94.1% copied from the corpus, longest span 16")


@pytest.mark.parametrize("make,needle", [
    (lambda d: d, "is a directory"),
    (lambda d: (os.mkfifo(d / "fifo"), d / "fifo")[1], "is a named pipe (FIFO)"),
    (lambda d: "/dev/zero", "is a device"),
    (lambda d: (d / "b.txt").write_bytes(b"ab\x00cd") and d / "b.txt", "looks binary"),
    (lambda d: (d / "e.txt").write_bytes(b"") or d / "e.txt", "the file is empty"),
    (lambda d: (d / "w.txt").write_bytes(b" \n\n ") and d / "w.txt", "holds only whitespace"),
    (lambda d: (d / "l.txt").write_bytes(b"caf\xe9") and d / "l.txt", "not UTF-8 text"),
    (lambda d: d / "missing.txt", "does not exist"),
])
def test_a_corpus_that_is_no_text_is_one_line_and_exit_2(tmp_path, small_model, make, needle):
    r = tfchat("overlap", "--model", str(small_model), "--corpus", str(make(tmp_path)), "hello")
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_corpus_too_large_for_the_free_memory_says_its_size_and_the_limit(corpus_file):
    with pytest.raises(CorpusError, match=r"needs about .* GiB to index, and 0\.0 GiB are free here"):
        check_corpus_file(corpus_file, available=1000)


def test_a_cached_index_is_read_and_asked_without_torch(corpus_file):
    """The app's process never loads torch: it reads the index a child built, and asks it in plain Python."""
    import subprocess
    import sys

    from support import ROOT

    TrainingText.open(corpus_file, load_encoding())  # built here, and cached
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from tfchat.core.corpus.training_text import TrainingText\n"
            "from tfchat.core.engine.tokenizer import load_encoding\n"
            f"corpus = TrainingText.open(Path({str(corpus_file)!r}), load_encoding(), build=False)\n"
            "ids = load_encoding().encode('Every great salesperson listens twice as much as they speak')\n"
            "print(len(corpus.overlap(ids, 8).spans), corpus.continuations(ids[:3]).suffix,\n"
            "      [m for m in sys.modules if m == 'torch' or m.startswith('torch.')][:3])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.split() == ["1", "3", "[]"], r.stdout + r.stderr


def test_a_gpt2_folder_is_held_against_its_corpus_in_its_own_tokens(tmp_path):
    import sys
    from pathlib import Path

    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "nn"))
    from test_gpt2 import TRAINING_TEXT, make_gpt2

    from tfchat.core.engine.folder_tokenizer import load_folder_tokenizer

    folder = tmp_path / "gpt2"
    make_gpt2(folder)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TRAINING_TEXT, encoding="utf-8")
    text = "Well: the salesperson listens first, then asks what the customer needs."
    r = tfchat("overlap", "--model", str(folder), "--corpus", str(corpus), "--json", text)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    ids = load_folder_tokenizer(folder).encode(text)
    assert found["tokens"] == len(ids) and ids != load_encoding().encode(text)  # the folder's BPE, not cl100k
    [span] = found["spans"]
    # " the" after "Well:" is not the corpus's "The": the span starts after it, and the text occurs 40 times.
    assert span["text"] == " salesperson listens first, then asks what the customer needs."
    assert span["occurrences"] == 40 and span["line"] == 1
