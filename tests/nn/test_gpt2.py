"""GPT-2 folders as transformers' save_pretrained leaves them: the engine's logits, greedy tokens and
tokenizer ids are transformers' own. Random models and byte-level BPE tokenizers, built here."""
import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support.cli import tfchat  # noqa: E402
from support.gpt2_folder import TRAINING_TEXT, make_gpt2  # noqa: E402
from support.reference import assert_same_greedy_tokens  # noqa: E402

from tfchat.core.engine.in_process import Engine  # noqa: E402
from tfchat.core.errors import CheckpointError  # noqa: E402
from tfchat.core.nn.checkpoint import load_checkpoint  # noqa: E402
from tfchat.core.settings.sampling_params import SamplingParams  # noqa: E402

transformers = pytest.importorskip("transformers")

VARIED_TEXT = ("Hello, world! It's 3.14159; naïve café Straße — Ελληνικά, 日本語 🤖🎉 👩‍👩‍👧\n"
               "          long    whitespace\t\tand tabs\r\n\r\n  <|endoftext|> after the end")


def crop_greedy(model, prompt, n):
    """transformers' model under the book's loop: the last n_positions tokens, argmax, every step."""
    window, ids, gaps = model.config.n_positions, list(prompt), []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids[-window:]])).logits[0, -1]
            top = torch.topk(logits, 2).values
            gaps.append(float(top[0] - top[1]))
            ids.append(int(logits.argmax()))
    return ids[len(prompt):], gaps


CASES = {
    "gelu_new, tied, tokenizer.json, safetensors": dict(activation="gelu_new", tied=True),
    "relu, untied, vocab+merges, pytorch_model.bin": dict(activation="relu", tied=False, layout="vocab", weights="bin"),
    "gelu (erf), untied, vocab+merges": dict(activation="gelu", tied=False, layout="vocab"),
    "unscaled attention, LayerNorm eps 1e-3": dict(activation="gelu_new", scale_attn_weights=False,
                                                   layer_norm_epsilon=1e-3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_gpt2_folder_is_transformers_model_exactly(tmp_path, case):
    folder = tmp_path / "gpt2"
    model = make_gpt2(folder, **CASES[case])
    engine = Engine.load(folder, "cpu")
    assert engine.config.family == "gpt2" and engine.config.activation == CASES[case]["activation"]
    ids = torch.randint(0, model.config.vocab_size, (16,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0, -1]
    got = engine.model.last_logits(torch.tensor(ids), engine.model.new_cache())
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    # Greedy, in the window and past n_positions (where tfchat crops as the book does).
    prompt = engine.encode("The salesperson")
    expected_ids, gaps = crop_greedy(model, prompt, 30)
    generation = engine.generate("The salesperson", SamplingParams(temperature=0, max_new_tokens=30))
    text = "".join(generation)
    got_ids = generation.token_ids
    assert_same_greedy_tokens(expected_ids[:len(got_ids)], got_ids, gaps)
    if len(got_ids) < 30:  # it said <|endoftext|>: the end, not shown
        assert got_ids[-1] == model.config.eos_token_id and generation.stats.finish_reason == "end_of_text"
        got_ids = got_ids[:-1]
    assert text == engine.encoding.decode(got_ids)


@pytest.mark.parametrize("layout", ["tokenizer.json", "vocab"])
def test_the_folders_tokenizer_gives_transformers_ids(tmp_path, layout):
    from transformers import AutoTokenizer

    folder = tmp_path / "gpt2"
    make_gpt2(folder, layout=layout)
    engine = Engine.load(folder, "cpu")
    theirs = AutoTokenizer.from_pretrained(folder)
    for text in (VARIED_TEXT, TRAINING_TEXT, " " * 200 + "x"):
        ids = theirs(text).input_ids
        assert engine.encoding.encode(text) == ids, text[:30]
        assert engine.encoding.decode(ids) == theirs.decode(ids)
    assert engine.encoding.name.startswith("gpt2")


def test_end_of_text_ends_a_generation(tmp_path):
    folder = tmp_path / "gpt2"
    model = make_gpt2(folder, tied=False)
    eos = model.config.eos_token_id
    with torch.no_grad():  # the final LayerNorm's output is its bias, which only the end-of-text row sees
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[eos] = 1.0
    model.save_pretrained(folder)
    engine = Engine.load(folder, "cpu")
    generation = engine.generate("The salesperson", SamplingParams(temperature=0, max_new_tokens=30))
    assert "".join(generation) == ""
    assert generation.stats.finish_reason == "end_of_text" and generation.stats.new_tokens == 1
    # Rows decoded together (compare, serve) end there too, each on its own.
    batch = engine.generate_batch(["The salesperson", "Naïve café"], [SamplingParams(temperature=0, max_new_tokens=9),
                                                                       SamplingParams(temperature=1, seed=3)])
    for _ in batch:
        pass
    assert [s.finish_reason for s in batch.stats] == ["end_of_text", "end_of_text"] and batch.texts == ["", ""]
    # end_of_text: ignore (a preset key, /set, --end-of-text) goes on past it, and shows it.
    going_on = engine.generate("The salesperson", SamplingParams(temperature=0, max_new_tokens=3, end_of_text="ignore"))
    assert "".join(going_on) == "<|endoftext|>" * 3 and going_on.stats.finish_reason == "length"
    r = tfchat("generate", "--model", str(folder), "--temperature", "0", "--max-new-tokens", "2", "--end-of-text",
               "ignore", "Hi")
    assert r.returncode == 0 and r.stdout.startswith("<|endoftext|><|endoftext|>"), r.stderr


def test_cli_and_errors_on_gpt2_folders(tmp_path):
    folder = tmp_path / "gpt2"
    make_gpt2(folder)
    r = tfchat("generate", "--model", str(folder), "--temperature", "0", "--max-new-tokens", "12", "The salesperson")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    info = tfchat("info", "--model", str(folder))
    assert "a transformers GPT-2 folder" in info.stdout
    r = tfchat("export", "--model", str(folder), str(tmp_path / "again"))  # it would lose GPT-2's differences
    assert r.returncode == 2 and "Hugging Face format already" in r.stderr and not (tmp_path / "again").exists()
    (tmp_path / "text.txt").write_text(TRAINING_TEXT * 5)
    r = tfchat("train", str(tmp_path / "text.txt"), "--out", str(folder), "--resume", "--max-iters", "1")
    assert r.returncode == 2 and "tfchat train trains the book's model" in r.stderr
    (folder / "tokenizer.json").unlink()
    r = tfchat("info", "--model", str(folder))
    assert r.returncode == 2 and "vocab.json and merges.txt missing" in r.stderr and "never downloads" in r.stderr
    config = json.loads((folder / "config.json").read_text())
    config["scale_attn_by_inverse_layer_idx"] = True
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="inverse of the layer index"):
        load_checkpoint(folder)


def test_bench_on_a_gpt2_folder_compares_with_transformers_on_it(tmp_path):
    folder = tmp_path / "gpt2"
    make_gpt2(folder)
    r = tfchat("bench", "--model", str(folder), "--tokens", "4")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["family"] == "gpt2" and figures["engine_tokens_per_s"] > 0 and figures["limit_tokens_per_s"] > 0
    assert figures["peer"].endswith("this very folder") and figures["peer_tokens_per_s"] > 0
    assert figures["peer_ratio"] == pytest.approx(figures["peer_tfchat_tokens_per_s"] / figures["peer_tokens_per_s"],
                                                  rel=0.02)
    assert "peer: transformers" in r.stdout and "book loop" not in r.stdout


def test_scoring_a_text_gives_transformers_loss(tmp_path):
    folder = tmp_path / "gpt2"
    model = make_gpt2(folder, n_positions=64)
    text = "The salesperson listens first, then asks what the customer needs."
    (tmp_path / "text.txt").write_text(text)
    r = tfchat("score", "--model", str(folder), "--format", "jsonl", str(tmp_path / "text.txt"))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    ids = torch.tensor([Engine.load(folder, "cpu").encode(text)])
    with torch.no_grad():
        expected = model(ids, labels=ids).loss.item()
    assert summary["loss"] == pytest.approx(expected, abs=1e-4)


class Payload:
    """What a hostile pytorch_model.bin would carry: an object, so code to import and run."""


def test_a_pytorch_model_bin_carrying_code_is_refused(tmp_path):
    folder = tmp_path / "gpt2"
    make_gpt2(folder, weights="bin")
    torch.save({"transformer.wte.weight": torch.zeros(2, 2), "payload": Payload()}, folder / "pytorch_model.bin")
    r = tfchat("info", "--model", str(folder))
    assert r.returncode == 2 and "asks to load Python code" in r.stderr and "Traceback" not in r.stderr
