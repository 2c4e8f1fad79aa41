"""The checkpoints readers of the book's repository have: bare state dicts in both naming dialects,
half precision, any file name; each opens as it is and computes that dialect's own model."""
import json

import pytest
import torch

from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import CheckpointError, PromptError
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.decode.generation import generate_ids
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.engine.tokenizer import load_encoding
from support.reference import assert_same_greedy_tokens
from support.repository_models import RepositoryModel, ScifiModel
from support.cli import tfchat

DIALECTS = {"repository model.py": RepositoryModel, "scifi-demo": ScifiModel}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The same shapes for both: D=32, 4 heads, 2 blocks, a window of 8, a vocabulary of 700.
SHAPE = (32, 4, 2, 8, 700)


def save_bare(model, path, dtype=torch.float32):
    """As the repository's scripts save: `torch.save(model.state_dict(), path)`, after `.half()` if asked.
    The model is then given the stored values back, so it is the model the file describes."""
    state = model.to(dtype).state_dict()
    torch.save(state, path)
    model.float()
    return path


def _check_logits_and_greedy(model, path):
    loaded = load_checkpoint(path)
    fast = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"))
    C, V = model.context_length, loaded.config.vocab_size
    ids = torch.randint(0, loaded.config.embedding_rows, (3 * C,), generator=torch.Generator().manual_seed(4)).tolist()
    sequence = torch.tensor(ids)
    cache = fast.new_cache()
    torch.testing.assert_close(fast.last_logits(sequence[:2], cache), model.next_logits(ids[:2]), atol=1e-4, rtol=0)
    for length in range(3, C + 1):
        torch.testing.assert_close(fast.last_logits(sequence[length - 1:length], cache), model.next_logits(ids[:length]),
                                   atol=1e-4, rtol=0)
    for length in range(C + 1, 3 * C + 1):  # past the window: the last C tokens, as the repository crops
        torch.testing.assert_close(fast.last_logits(sequence[length - C:length]), model.next_logits(ids[:length]),
                                   atol=1e-4, rtol=0)
    prompt = ids[:3]
    expected, gaps = model.greedy(prompt, 3 * C)
    got = list(generate_ids(fast, prompt, SamplingParams(temperature=0, max_new_tokens=3 * C)))
    assert_same_greedy_tokens(expected, got, gaps)
    assert all(0 <= t < V for t in got)
    return loaded


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_and_dtype_opens_as_it_is_and_is_exact_past_the_window(tmp_path, dialect, dtype):
    model = DIALECTS[dialect](*SHAPE, seed=1)
    suffix = {"float32": ".pt", "float16": ".pth", "bfloat16": ".ckpt"}[dtype]
    path = save_bare(model, tmp_path / f"model-{dtype}{suffix}", DTYPES[dtype])
    loaded = _check_logits_and_greedy(model, path)
    D, H, L, C, V = SHAPE
    extra = 1 if isinstance(model, RepositoryModel) else 0
    assert (loaded.config.d_model, loaded.config.num_heads, loaded.config.num_blocks,
            loaded.config.context_length, loaded.config.vocab_size) == SHAPE
    assert loaded.config.embedding_rows == V + extra
    assert loaded.h_params_inferred and loaded.bare
    assert loaded.h_params == {"d_model": D, "num_heads": H, "num_blocks": L, "context_length": C,
                               "max_token_value": V}
    assert ("model.py" in loaded.layout) == (dialect == "repository model.py")


def test_the_repository_default_window_of_16_and_its_8_blocks(tmp_path):
    """model.py's own defaults (D=64, 4 heads, 8 blocks, a window of 16): every chat is past the window."""
    model = RepositoryModel(64, 4, 8, 16, 900, seed=2)
    _check_logits_and_greedy(model, save_bare(model, tmp_path / "model-ckpt.pt"))


def test_wrapper_prefixes_and_a_state_dict_without_h_params_open_too(tmp_path):
    model = ScifiModel(*SHAPE, seed=3)
    compiled = tmp_path / "compiled.pt"
    torch.save({"_orig_mod." + k: v for k, v in model.state_dict().items()}, compiled)
    loaded = _check_logits_and_greedy(model, compiled)
    assert loaded.key_prefix == "_orig_mod." and "_orig_mod." in loaded.layout
    assert loaded.stored_name("model_out_linear_layer.bias") == "_orig_mod.model_out_linear_layer.bias"
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"model_state_dict": model.state_dict(), "optimizer": {}}, wrapped)
    loaded = _check_logits_and_greedy(model, wrapped)
    assert loaded.h_params_inferred and "without h_params" in loaded.layout


def test_the_chapters_format_still_says_its_h_params_are_stored(make_checkpoint):
    loaded = load_checkpoint(make_checkpoint(vocab_size=300))
    assert not loaded.bare and not loaded.h_params_inferred and "dropout" in loaded.h_params
    assert loaded.config.embedding_rows == loaded.config.vocab_size == 300


def test_the_repositorys_extra_embedding_row_is_a_prompt_token_but_never_drawn(tmp_path):
    """model.py's output layer stops one id short of its embedding: prompts may use that id, sampling cannot."""
    encoding = load_encoding()
    last = encoding.encode(" the")[0]  # the embedding's extra row is exactly this token
    repository = save_bare(RepositoryModel(32, 4, 2, 8, last, seed=5), tmp_path / "model-ckpt.pt")
    engine = Engine.load(repository, "cpu")
    assert (engine.config.vocab_size, engine.config.embedding_rows) == (last, last + 1)
    assert engine.encode(" the the") == [last, last]
    generation = engine.generate(" the the", SamplingParams(temperature=1.0, max_new_tokens=60, seed=1))
    text = "".join(generation)
    assert generation.stats.new_tokens == 60 and text
    assert all(0 <= t < last for t in generation.token_ids)
    # The chapter's model of the same vocabulary has no row for it: one line, not an index error.
    chapter = save_bare(ScifiModel(32, 4, 2, 8, last, seed=5), tmp_path / "scifi.pt")
    with pytest.raises(PromptError, match="vocabulary stops at token"):
        Engine.load(chapter, "cpu").generate(" the the", SamplingParams(temperature=0, max_new_tokens=2))


def _bare_state(dialect=ScifiModel, **changes):
    state = dict(dialect(*SHAPE, seed=6).state_dict())
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


@pytest.mark.parametrize("state,needle", [
    ({**{k: v for k, v in _bare_state().items() if ".ln1." not in k}},
     "closest to the chapter's module names"),
    (_bare_state(RepositoryModel, **{"transformer_blocks.1.layer_norm_2.bias": None}),
     "missing 1 tensor(s), e.g. transformer_blocks.1.layer_norm_2.bias"),
    (_bare_state(RepositoryModel, **{"language_model_out_linear_layer.weight": torch.zeros(701, 32)}),
     "has 701 rows and the output layer 701; a model in the repository's model.py names has 702"),
    (_bare_state(ScifiModel, **{"transformer_blocks.1.mha.heads.2.mask": torch.ones(9, 9)}),
     "transformer_blocks.1.mha.heads.2.mask has shape [9, 9] but the other tensors imply [8, 8]"),
    (_bare_state(ScifiModel, **{"transformer_blocks.0.mha.heads.0.Wq.weight": torch.zeros(8, 30)}),
     "Wq.weight has shape [8, 30] but the other tensors imply [8, 32]"),
    (_bare_state(ScifiModel, **{"transformer_blocks.7.ln1.weight": torch.ones(32)}),
     "1 unexpected, e.g. transformer_blocks.7.ln1.weight"),
    ({"transformer.wte.weight": torch.zeros(10, 4), "transformer.h.0.attn.c_attn.weight": torch.zeros(4, 12)},
     "in none of the book's layouts (its first key is 'transformer.wte.weight')"),
    (_bare_state(ScifiModel, **{"model_out_linear_layer.bias": torch.full((700,), float("nan"))}),
     "model_out_linear_layer.bias holds NaN"),
], ids=["no-ln1", "repository-missing", "rows", "mask", "head-shape", "extra-block", "gpt2", "nan"])
def test_a_state_dict_that_is_none_of_them_is_one_line_naming_the_closest_dialect(tmp_path, state, needle):
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_info_names_the_format_the_inferred_h_params_and_the_stored_tensor_names(tmp_path):
    path = save_bare(RepositoryModel(*SHAPE, seed=7), tmp_path / "model-ckpt.pt", torch.float16)
    r = tfchat("info", "--model", str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("format: a bare state dict, the repository's model.py names")
    assert lines[2] == "h_params: inferred from the tensors"
    assert lines[3] == "d_model=32 num_heads=4 num_blocks=2 context_length=8 max_token_value=700 (embedding rows 701)"
    assert "transformer_blocks.0.multi_head_attention_layer.heads.3.query_layer.weight: [8, 32] float16" in lines
    assert "token_embedding_lookup_table.weight: [701, 32] float16" in lines


def test_generate_on_a_bare_file_equals_the_engine_and_a_broken_one_is_exit_2(tmp_path):
    encoding = load_encoding()
    model = ScifiModel(32, 4, 2, 8, 100256, seed=8)
    path = save_bare(model, tmp_path / "model-scifi.pt")
    r = tfchat("generate", "The ship", "--model", str(path), "--preset", "greedy", "--max-new-tokens", "20",
               "--stats")
    assert r.returncode == 0, r.stderr
    expected, _ = model.greedy(encoding.encode("The ship"), 20)
    assert r.stdout == encoding.decode(expected) + "\n" and json.loads(r.stderr.splitlines()[-1])["new_tokens"] == 20
    broken = tmp_path / "broken.pt"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("ffn.ffn.2.bias")}, broken)
    r = tfchat("generate", "x", "--model", str(broken))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
    assert "missing 2 tensor(s), e.g. transformer_blocks.0.ffn.ffn.2.bias" in r.stderr


def test_engine_card_says_what_the_file_is_and_how_long_it_took(tmp_path):
    path = save_bare(ScifiModel(*SHAPE, seed=9), tmp_path / "model-scifi.pt", torch.bfloat16)
    card = Engine.load(path, "cpu").describe()
    assert card["h_params_source"] == "inferred from the tensors" and "bare state dict" in card["layout"]
    assert card["stored_dtypes"] == ["bfloat16"] and card["load_seconds"] > 0
    assert card["tensors"][1][0] == "transformer_blocks.0.ln1.weight"


async def test_the_app_opens_a_bare_repository_file_says_what_it_is_and_generates_its_model(tmp_path):
    from support.pilot import finished, notices, ready, send, views
    from tfchat.tui.app import make_app

    encoding = load_encoding()
    model = RepositoryModel(32, 4, 2, 16, 100256, seed=10)
    path = save_bare(model, tmp_path / "model-ckpt.pt")
    app = make_app(str(path), "cpu", "greedy", str(tmp_path / "history.sqlite3"))
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        summary = [n for n in notices(app) if n.startswith("Loaded model-ckpt.pt in ")]
        parameters = app.engine.describe()["parameter_count"]
        assert summary and f"{parameters / 1e6:.1f}M parameters" in summary[0] and "resident (cpu)" in summary[0]
        assert "repository's model.py names" in summary[0] and "h_params inferred from the tensors" in summary[0]
        app.chat.run_slash_text("/set max_new_tokens 40")  # past the window of 16 within the answer
        await send(pilot, "The customer")
        await finished(pilot, 1)
        expected, _ = model.greedy(encoding.encode("The customer"), 40)
        assert views(app)[0].output == encoding.decode(expected)
        card = app.engine.describe()
        assert card["h_params_source"] == "inferred from the tensors" and card["h_params"]["max_token_value"] == 100256


def test_serve_takes_the_extra_embedding_row_as_a_prompt_token(tmp_path):
    """Token-id prompts may use every embedding row; the one past the output layer is not refused."""
    from support.serve import call as _call, start_serve

    model = RepositoryModel(32, 4, 2, 16, 100256, seed=11)
    process, server = start_serve(save_bare(model, tmp_path / "model-ckpt.pt"))
    try:
        prompt = [1000, 100256]  # the second is the repository's extra row
        status, answer = _call(server, "POST", "/v1/completions", {
            "model": "model-ckpt.pt", "prompt": prompt, "max_tokens": 6, "temperature": 0,
            "return_tokens_as_token_ids": True, "logprobs": 0}, key=None)
        assert status == 200, answer
        expected, _ = model.greedy(prompt, 6)
        assert answer["choices"][0]["logprobs"]["tokens"] == [f"token_id:{t}" for t in expected]
        status, answer = _call(server, "POST", "/v1/completions", {
            "model": "model-ckpt.pt", "prompt": [100257], "max_tokens": 2}, key=None)
        assert status == 400 and answer["error"]["param"] == "prompt"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_file_in_torchs_old_pre_zip_format_opens_too(tmp_path):
    """Files are mapped from disk when torch can (its zip format); an old-format file is read whole instead."""
    model = RepositoryModel(*SHAPE, seed=12)
    path = tmp_path / "old.pt"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    loaded = _check_logits_and_greedy(model, path)
    assert loaded.bare and loaded.config.embedding_rows == SHAPE[4] + 1
