"""`--weights int8`: every linear rounded to 8 bits at load, one scale per output channel. Not exact,
so its cost is measured (score against the exact weights) and every place a result shows says so."""
import json

import pytest
import torch

from support.cli import tfchat
from support.pilot import finished, ready, send
from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import TfchatError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.weights_cost import weights_cost
from tfchat.core.settings.sampling_params import SamplingParams


def test_int8_weights_read_a_quarter_of_the_bytes_and_stay_close_to_the_exact_model(make_checkpoint):
    path = make_checkpoint(d_model=64, num_heads=4, num_blocks=2, context_length=32, vocab_size=3000, seed=3)
    loaded = load_checkpoint(path)
    exact = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"))
    rounded = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), weights="int8")
    assert rounded.kernels() == {"blocks": "int8 per channel (fbgemm)", "output layer": "int8 per channel (fbgemm)"}
    assert rounded.weight_bytes_per_token() < 0.3 * exact.weight_bytes_per_token()
    ids = torch.randint(0, 3000, (60,), generator=torch.Generator().manual_seed(1)).tolist()
    cost = weights_cost(exact, rounded, ids)  # through the window and past it, as score goes
    assert cost["tokens"] == 59
    assert 0 < cost["mean_kl"] < 0.02 and cost["same_top_token"] >= 0.8  # random weights: many near-ties
    assert abs(cost["loss"] - cost["exact_loss"]) < 0.05
    # The cache path gives the same numbers as the windows score reads: one model, however it is run.
    cache = rounded.new_cache()
    stepped = [rounded.last_logits(torch.tensor(ids[:10]), cache)]
    stepped += [rounded.last_logits(torch.tensor([t]), cache) for t in ids[10:20]]
    windows = [rounded.last_logits(torch.tensor(ids[:n])) for n in range(10, 21)]
    torch.testing.assert_close(torch.stack(stepped), torch.stack(windows), atol=1e-4, rtol=0)


def test_a_generation_with_int8_weights_says_so(make_checkpoint):
    engine = Engine.load(make_checkpoint(vocab_size=100256, d_model=32, num_heads=4), "cpu", weights="int8")
    generation = engine.generate("Hello", SamplingParams(temperature=0, max_new_tokens=5))
    text = "".join(generation)
    assert text and generation.stats.weights == "int8"
    assert "int8 weights, not exact" in generation.stats.figures()
    assert generation.stats.as_json()["weights"] == "int8"
    assert engine.describe()["weights"] == "int8"
    engine.close()
    exact = Engine.load(make_checkpoint(vocab_size=100256, d_model=32, num_heads=4), "cpu")
    generation = exact.generate("Hello", SamplingParams(temperature=0, max_new_tokens=3))
    "".join(generation)
    assert "weights" not in generation.stats.as_json() and not any("weights" in f for f in generation.stats.figures())
    exact.close()
    with pytest.raises(TfchatError, match="choose one of exact, int8"):
        Engine.load(make_checkpoint(), "cpu", weights="int4")


def test_score_and_generate_take_int8_weights_and_measure_their_cost(make_checkpoint, tmp_path):
    path = make_checkpoint(d_model=32, num_heads=4, num_blocks=2, context_length=32, vocab_size=100256, seed=7)
    text = tmp_path / "held_out.txt"
    text.write_text("The customer asks about the price, and the seller listens before answering. " * 8)
    r = tfchat("score", "--model", str(path), "--weights", "int8", "--format", "jsonl", str(text))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["weights"] == "int8" and summary["mean_kl"] >= 0 and summary["max_kl"] >= summary["mean_kl"]
    assert summary["exact_loss"] > 0 and summary["loss"] > 0 and 0 <= summary["same_top_token"] <= 1
    r = tfchat("score", "--model", str(path), "--weights", "int8", str(text))
    assert "int8 weights, not exact: the exact weights score loss" in r.stdout and "mean KL" in r.stdout
    r = tfchat("generate", "--model", str(path), "--weights", "int8", "--stats", "--max-new-tokens", "4", "Hello")
    assert r.returncode == 0, r.stderr
    assert "tfchat: int8 weights, not exact" in r.stderr  # said where the text alone would not say it
    assert json.loads(r.stderr.strip().splitlines()[-1])["weights"] == "int8"
    r = tfchat("generate", "--model", str(path), "--weights", "int4", "Hello")
    assert r.returncode == 2 and "invalid choice: 'int4'" in r.stderr


async def test_the_app_labels_a_model_with_int8_weights(small_model, tmp_path):
    from functools import partial

    from tfchat.tui.app import make_app
    from tfchat.tui.screens.inspector_screen import InspectorScreen
    from tfchat.tui.widgets.status_line import StatusLine
    from support.pilot import history_rows, wait_for

    history = tmp_path / "history.sqlite3"
    app = make_app(str(small_model), "cpu", "greedy", str(history),
                   engine_loader=partial(Engine.load, weights="int8"))
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(pilot)
        assert "int8 weights, not exact" in str(app.query_one(StatusLine).render())
        await send(pilot, "/set max_new_tokens 4")
        await send(pilot, "Hello")
        await finished(pilot, 1)
        view = app.query_one("Transcript").exchanges()[0]
        assert "int8 weights, not exact" in view.summary_shown
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        assert "int8 weights, not exact" in str(app.screen.query_one("#summary").render())
    stats = json.loads(history_rows(history)[-1][5])
    assert stats["weights"] == "int8"


def test_an_int8_row_gets_the_same_numbers_alone_or_among_others():
    """fbgemm rounds its whole input with one scale; each row is mapped onto [0, 1] first, so a row's
    neighbours (serve's batch, a prompt's fill) never change its numbers."""
    from tfchat.core.nn.block_products import Product

    g = torch.Generator().manual_seed(0)
    product = Product(torch.randn(96, 64, generator=g), torch.randn(96, generator=g), torch.device("cpu"),
                      weights="int8")
    rows = torch.randn(6, 64, generator=g) * torch.tensor([1.0, 10.0, 0.1, 3.0, 100.0, 1.0])[:, None]
    rows[5] = 0.5  # a constant row
    together = product(rows)
    alone = torch.cat([product(rows[i:i + 1]) for i in range(6)])
    assert torch.equal(together, alone)
    exact = rows @ product_weight(product).t() + product.bias
    assert (together - exact).abs().max() < 0.05 * exact.abs().max()


def product_weight(product):
    """The rounded weights as floats, from the packed form."""
    weight, _ = torch.ops.quantized.linear_unpack(product.packed)
    return weight.dequantize()


def test_a_gpt2_folder_takes_int8_weights(tmp_path):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(["The customer listens, then the seller asks. " * 30], vocab_size=300,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=bpe.get_vocab_size(), n_positions=32, n_embd=48, n_layer=2, n_head=4)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>").save_pretrained(tmp_path)
    exact, rounded = Engine.load(tmp_path, "cpu"), Engine.load(tmp_path, "cpu", weights="int8")
    generation = rounded.generate("The customer", SamplingParams(temperature=0, max_new_tokens=6, end_of_text="ignore"))
    assert "".join(generation) and generation.stats.weights == "int8"
    cost = weights_cost(exact.model, rounded.model, exact.encode("The customer listens, then the seller asks." * 3))
    assert 0 <= cost["mean_kl"] < 0.05
    exact.close()
    rounded.close()
