"""`tfchat export`: a Hugging Face folder that transformers loads with the book's logits, greedy tokens and
tokenizer ids, and that tfchat opens back exactly. Real transformers, real tokenizers, real files."""
import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: nothing may be fetched

from support.cli import tfchat  # noqa: E402
from support.reference import ReferenceModel, assert_same_greedy_tokens, random_book_checkpoint  # noqa: E402
from support.repository_models import RepositoryModel  # noqa: E402

from tfchat.core.engine.tokenizer import load_encoding  # noqa: E402
from tfchat.core.export.folder import export_folder  # noqa: E402
from tfchat.core.nn.checkpoint import load_checkpoint  # noqa: E402
from tfchat.core.settings.sampling_params import SamplingParams  # noqa: E402

transformers = pytest.importorskip("transformers")
BOOK = SamplingParams(temperature=0.5, max_new_tokens=200)


def export(path, out, params=BOOK, **kw):
    return export_folder(load_checkpoint(path), out, params, load_encoding().name, **kw)


def load_hf(folder, implementation="eager", dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=dtype,
                                                attn_implementation=implementation).eval()


# Odd shapes: a head of 20 and of 6, a vocabulary smaller than cl100k's, and cl100k's whole.
SHAPES = {
    "head size 20, small vocabulary": dict(d_model=40, num_heads=2, num_blocks=2, context_length=16, vocab_size=3000),
    "head size 6, full vocabulary": dict(d_model=24, num_heads=4, num_blocks=3, context_length=12, vocab_size=100256),
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_transformers_gives_the_books_logits_and_greedy_tokens(tmp_path, shape, implementation):
    dims = SHAPES[shape]
    raw = random_book_checkpoint(**dims, seed=3)
    path = tmp_path / "m.ckpt"
    torch.save(raw, path)
    export(path, tmp_path / "hf")
    model, reference = load_hf(tmp_path / "hf", implementation), ReferenceModel(raw)
    C, V = dims["context_length"], dims["vocab_size"]
    ids = torch.randint(0, V, (C,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    assert logits.shape == (C, V)
    torch.testing.assert_close(logits, reference.logits(ids), atol=1e-4, rtol=0)
    # Greedy in the window: the book's tokens (up to a tie closer than float noise).
    prompt = ids[:3]
    expected, gaps = reference.greedy(prompt, C - len(prompt))
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=C - len(prompt), do_sample=False)
    assert_same_greedy_tokens(expected, out[0, len(prompt):].tolist(), gaps)
    # Past the window the book crops and transformers cannot: refused, saying so.
    with pytest.raises(ValueError, match="past this model's window"):
        model(torch.tensor([ids + ids[:1]]))


def test_the_repositorys_bare_state_dict_exports_with_its_longer_embedding(tmp_path):
    """model.py's dialect: its names, a bare state dict, an embedding one row longer than the output layer."""
    repository = RepositoryModel(d_model=32, num_heads=4, num_blocks=2, context_length=16, max_token_value=500, seed=2)
    path = tmp_path / "model-ckpt.pt"
    torch.save(repository.state_dict(), path)
    export(path, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["vocab_size"], config["embedding_rows"]) == (500, 501)
    model = load_hf(tmp_path / "hf", "sdpa")
    ids = list(range(490, 501)) + [7, 8]  # id 500: only the longer embedding has it
    with torch.no_grad():
        torch.testing.assert_close(model(torch.tensor([ids])).logits[0], repository(torch.tensor([ids]))[0],
                                   atol=1e-4, rtol=0)
    expected, gaps = repository.greedy(ids[:2], 14)
    out = model.generate(torch.tensor([ids[:2]]), attention_mask=torch.ones(1, 2, dtype=torch.long),
                         max_new_tokens=14, do_sample=False)
    assert_same_greedy_tokens(expected, out[0, 2:].tolist(), gaps)


def test_a_float16_checkpoint_exports_as_float16_and_keeps_its_values(tmp_path):
    raw = random_book_checkpoint(32, 4, 2, 16, 800, seed=5, dtype=torch.float16)
    path = tmp_path / "half.ckpt"
    torch.save(raw, path)
    export(path, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["torch_dtype"] == "float16"
    model = load_hf(tmp_path / "hf", dtype="auto")
    assert model.dtype == torch.float16
    model = load_hf(tmp_path / "hf", dtype=torch.float32)  # upcast, as tfchat computes
    ids = list(range(100, 116))
    with torch.no_grad():
        torch.testing.assert_close(model(torch.tensor([ids])).logits[0], ReferenceModel(raw).logits(ids),
                                   atol=1e-4, rtol=0)


def test_the_folder_opens_back_in_tfchat_exactly(tmp_path, make_checkpoint):
    path = make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=7)
    out = tmp_path / "exported"
    r = tfchat("export", "--model", str(path), "--training-text", "a sales textbook", str(out))
    assert r.returncode == 0, r.stderr
    assert "exported" in r.stdout and "model.safetensors" in r.stdout
    original, back = load_checkpoint(path), load_checkpoint(out)
    assert back.config == original.config
    assert back.h_params == original.h_params  # kept in config.json, training settings included
    weights = {k: v for k, v in original.state_dict.items() if not k.endswith(".mask")}
    assert back.state_dict.keys() == weights.keys()
    for key, tensor in weights.items():
        assert torch.equal(back.state_dict[key], tensor), key
    # The same text from either, past the window too (the book's crop is tfchat's, not transformers').
    runs = [tfchat("generate", "--model", str(m), "--temperature", "0", "--max-new-tokens", "60", "Once upon a time")
            for m in (path, out)]
    assert runs[0].returncode == 0 and runs[0].stdout == runs[1].stdout and runs[0].stdout.strip()
    info = tfchat("info", "--model", str(out))
    assert "a Hugging Face folder (tfchat export)" in info.stdout and "Model param size: " in info.stdout
    bench = tfchat("bench", "--model", str(out), "--tokens", "4")  # the book's loop on it too (it has no masks)
    assert bench.returncode == 0 and json.loads(bench.stdout.strip().splitlines()[-1])["ratio"] > 0, bench.stderr
    card = (out / "README.md").read_text()
    assert "a sales textbook" in card and f"{original.parameter_count:,}" in card and "trust_remote_code" in card


VARIED_TEXT = (
    "Hello, world! It's 3.14159 o'clock; we'll see 1234567890 and 2026-12-03.\n"
    "naïve café Straße — Ελληνικά, русский, 日本語のテキスト, 한국어, עברית, العربية\n"
    "emoji 🤖🎉 and a family 👩‍👩‍👧 and flags 🇫🇷 \U0001F600\n"
    "          long    whitespace\t\t\tand tabs\r\n\r\n\n\n   trailing   \n"
    "def f(x):\n    return {'a': [1, 2, 3]}  # code\n"
    "ALL CAPS I'M HERE, YOU'RE THERE, THEY'VE GONE\u00a0nbsp\u200bzero-width"
)


def test_the_tokenizer_gives_tiktokens_ids(tmp_path, make_checkpoint):
    from transformers import AutoTokenizer

    export(make_checkpoint(), tmp_path / "hf")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    encoding = load_encoding()
    generator = torch.Generator().manual_seed(0)
    # Random code points from several scripts and whitespace, for what a list of examples misses.
    alphabet = [chr(c) for c in list(range(32, 127)) + list(range(0x400, 0x460)) + list(range(0x4E00, 0x4E40))
                + [0x1F600, 0x1F680, 0x0301, 0x200D, 0x2028, 0x3000]] + [" ", "  ", "\n", "\t", "\r\n"]
    fuzz = "".join(alphabet[i] for i in torch.randint(0, len(alphabet), (4000,), generator=generator).tolist())
    for text in (VARIED_TEXT, fuzz, " " * 300 + "x", "\n" * 50, "1" * 100):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert ids == encoding.encode(text, disallowed_special=()), text[:40]
        assert tokenizer.decode(ids) == text
    # The special tokens keep tiktoken's ids, gaps and all.
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|endofprompt|>"]) == [100257, 100276]
    assert tokenizer.eos_token_id == 100257
    config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 16


def test_generation_config_carries_the_preset(tmp_path, make_checkpoint):
    from transformers import GenerationConfig

    path = make_checkpoint()
    export(path, tmp_path / "sampled", SamplingParams(temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.1,
                                                      max_new_tokens=64))
    sampled = GenerationConfig.from_pretrained(tmp_path / "sampled")
    assert (sampled.do_sample, sampled.temperature, sampled.top_k, sampled.top_p) == (True, 0.7, 50, 0.9)
    assert (sampled.repetition_penalty, sampled.max_new_tokens) == (1.1, 64)
    export(path, tmp_path / "greedy", SamplingParams(temperature=0, max_new_tokens=10))
    assert GenerationConfig.from_pretrained(tmp_path / "greedy").do_sample is False


def test_export_refuses_to_overwrite_and_replaces_only_an_export(tmp_path, make_checkpoint):
    path = make_checkpoint()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    for args in ((str(precious),), ("--force", str(precious))):
        r = tfchat("export", "--model", str(path), *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert (precious / "notes.txt").read_text() == "keep me" and len(list(precious.iterdir())) == 1
    out = tmp_path / "hf"
    assert tfchat("export", "--model", str(path), str(out)).returncode == 0
    assert tfchat("export", "--model", str(path), str(out)).returncode == 2
    other = make_checkpoint(seed=9)
    assert tfchat("export", "--model", str(other), "--force", str(out)).returncode == 0
    assert torch.equal(load_checkpoint(out).state_dict["model_out_linear_layer.bias"],
                       load_checkpoint(other).state_dict["model_out_linear_layer.bias"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_export_without_its_extra_says_what_to_install(tmp_path, make_checkpoint):
    code = ("import sys; sys.modules['transformers'] = None; from tfchat.tui.cli import main; "
            f"sys.exit(main(['export', '--model', {str(make_checkpoint())!r}, {str(tmp_path / 'hf')!r}]))")
    import subprocess
    import sys

    from support import ROOT

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    # Run from the clone: the extra comes from the clone (tfchat is not on PyPI).
    assert r.returncode == 2 and f"pip install -e '{ROOT}[export]'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "hf").exists()


def _break_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _rewrite_weights(folder, change):
    from tfchat.core.nn.safetensors_file import read_safetensors, write_safetensors

    tensors, _ = read_safetensors(folder / "model.safetensors")
    change(tensors)
    write_safetensors(folder / "model.safetensors", tensors)


def _replace_with(path, make):
    path.unlink()
    make(path)


BROKEN_FOLDERS = {
    "another model type": (lambda f: _break_config(f, model_type="llama"), "model_type 'llama'"),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "no model.safetensors"),
    "config.json not JSON": (lambda f: (f / "config.json").write_text("{oops"), "not readable JSON"),
    "config.json nested 200,000 deep": (lambda f: (f / "config.json").write_text("[" * 200_000 + "]" * 200_000),
                                        "nested more than"),
    "config.json with a 5,000-digit number": (lambda f: (f / "config.json").write_text('{"n_embd": ' + "7" * 5000 + "}"),
                                              "a number of 5,000"),
    "shape against config": (lambda f: _break_config(f, hidden_size=48), "config.json implies"),
    # What the file is, named as it is: never "no model.safetensors" for a pipe standing where it should be.
    "weights a FIFO": (lambda f: _replace_with(f / "model.safetensors", os.mkfifo), "is a named pipe (FIFO)"),
    "weights a directory": (lambda f: _replace_with(f / "model.safetensors", os.mkdir), "is a directory"),
    "config.json a FIFO": (lambda f: _replace_with(f / "config.json", os.mkfifo), "is a named pipe (FIFO)"),
    "a missing tensor": (lambda f: _rewrite_weights(f, lambda t: t.pop("lm_head.bias")), "missing lm_head.bias"),
    "NaN weights": (lambda f: _rewrite_weights(f, lambda t: t["model.norm.weight"].fill_(float("nan"))), "NaN"),
    "truncated weights": (lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[:5000]), "outside the file"),
}


@pytest.mark.parametrize("case", list(BROKEN_FOLDERS))
def test_a_broken_folder_is_one_line_and_exit_2(tmp_path, make_checkpoint, case):
    folder = tmp_path / "hf"
    export(make_checkpoint(), folder)
    breaking, message = BROKEN_FOLDERS[case]
    breaking(folder)
    r = tfchat("info", "--model", str(folder))
    assert r.returncode == 2, r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert message in r.stderr


def test_heads_are_padded_for_attention_kernels_and_read_back_bit_for_bit(tmp_path):
    """Heads of 20 are stored as 32 (zeros after each head's rows, zero projection columns) for vLLM's kernels:
    tfchat reads the folder back to the checkpoint's very tensors, `tfchat info` says how the heads are
    stored, and a folder whose padding is not zeros is refused (it would not be the model)."""
    from safetensors.torch import load_file, save_file

    raw = random_book_checkpoint(d_model=80, num_heads=4, num_blocks=2, context_length=16, vocab_size=3000, seed=1)
    torch.save(raw, tmp_path / "m.ckpt")
    export(tmp_path / "m.ckpt", tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["head_dim"] == 32
    tensors = load_file(tmp_path / "hf" / "model.safetensors")
    assert tensors["model.layers.0.self_attn.qkv_proj.weight"].shape == (3 * 4 * 32, 80)
    assert tensors["model.layers.0.self_attn.o_proj.weight"].shape == (80, 4 * 32)
    back = load_checkpoint(tmp_path / "hf")
    assert back.stored_head_size == 32 and back.config.head_size == 20
    for key, tensor in back.state_dict.items():
        assert torch.equal(tensor, raw["model_state_dict"][key]), key
    info = tfchat("info", "--model", str(tmp_path / "hf"))
    assert "padded with zeros from 20 to 32" in info.stdout and "1/sqrt(20)" in info.stdout
    tensors["model.layers.1.self_attn.o_proj.weight"][3, 20 + 5] = 0.5  # a padding column of head 0
    save_file(tensors, tmp_path / "hf" / "model.safetensors")
    r = tfchat("info", "--model", str(tmp_path / "hf"))
    assert r.returncode == 2 and "padded to 32 with values that are not zeros" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
