"""Drafted tokens, verified exactly: with drafting on, every preset and seed gives the text it gives with
drafting off, token for token, and where the text is predictable fewer passes give it."""
import pytest
import torch

from tfchat.core.corpus.index_build import build_index
from tfchat.core.decode.drafting import DraftStats
from tfchat.core.decode.head_draft import worth_drafting_with_the_head
from tfchat.core.decode.generation import generate_steps
from tfchat.core.errors import PresetError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.nn.verify_step import verify_rows
from tfchat.core.settings.presets import load_presets, params_from_mapping
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.helper_thread import HelperThread
from support.reference import random_book_checkpoint

NO_NEWLINES = [0]  # how many newlines each token holds: none (token 0 too)
PRESETS = ("greedy", "balanced", "precise", "creative", "book")
# (d_model, heads, blocks, context, vocab), weights' dtype, helper thread for the output layer. Under `auto` the
# first drafts from the text; the other two, whose output layer reads over twice their blocks' bytes as the
# book's does, draft with the model itself (`core.decode.head_draft`).
SHAPES = {
    "float32": ((36, 4, 3, 48, 1500), torch.float32, False),
    "float16": ((32, 2, 2, 40, 3000), torch.float16, False),
    "float32, halved output layer": ((48, 6, 2, 64, 3000), torch.float32, True),
}


def _model(tmp_path, shape, dtype, helper, seed=3):
    torch.save(random_book_checkpoint(*shape, seed=seed, dtype=dtype), tmp_path / "m.ckpt")
    loaded = load_checkpoint(tmp_path / "m.ckpt")
    return FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), HelperThread() if helper else None)


def _tokens(model, prompt, params, seed, corpus=None, stats=None):
    generator = torch.Generator().manual_seed(seed)
    return [token for token, _ in generate_steps(model, prompt, params, generator, corpus_index=corpus,
                                                 draft_stats=stats)]


def _prompt(vocab: int, seed: int, length: int = 6) -> list[int]:
    return torch.randint(0, vocab, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    built = {name: _model(tmp_path_factory.mktemp(name.replace(" ", "_")), *spec) for name, spec in SHAPES.items()}
    yield built
    for model in built.values():
        if model.helper is not None:
            model.helper.close()


@pytest.mark.parametrize("seeds", [range(3), pytest.param(range(3, 20), marks=pytest.mark.slow)],
                         ids=["seeds 0-2", "seeds 3-19"])
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_preset_and_seed_gives_the_text_it_gives_without_drafting(models, shape, preset, seeds):
    """20 seeds in all; grounded (the training text holds the text, as a model reciting it) and ungrounded (a
    training text of other tokens: the context still drafts); inside the window and with `window: shift`."""
    model = models[shape]
    C, V = model.config.context_length, model.config.vocab_size
    base = load_presets().get(preset).params
    stray = build_index(_prompt(V, 999, 400), NO_NEWLINES)
    totals = DraftStats("auto")
    for window, new_tokens in (("book", C - 8), ("shift", 2 * C)):
        for seed in seeds:
            prompt = _prompt(V, seed)
            plain = base.with_changes(draft="off", window=window, max_new_tokens=new_tokens)
            expected = _tokens(model, prompt, plain, seed)
            recited = build_index(_prompt(V, seed + 100, 50) + prompt + expected, NO_NEWLINES)
            for corpus, policy in ((recited, "auto"), (recited, "corpus"), (stray, "auto"), (None, "context")):
                stats = DraftStats(policy)
                got = _tokens(model, prompt, plain.with_changes(draft=policy), seed, corpus, stats)
                assert got == expected, (window, seed, policy)
                totals.drafted += stats.drafted
                totals.accepted += stats.accepted
                totals.passes += stats.passes
    # The test means something only if drafts were verified, taken and refused.
    assert totals.accepted > 0 and totals.drafted > totals.accepted


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_verify_gives_each_row_the_one_token_steps_logits(models, shape):
    """Row j of a verify is the one-token step's logits after j of its tokens: within 1e-5, and bit for bit
    where the weights are float16 (the float16-weight product is row-independent)."""
    model = models[shape]
    V = model.config.vocab_size
    for seed in range(10):
        ids = torch.tensor(_prompt(V, seed, 20))
        for rows in (2, 5, 9):
            stepped, verified = model.new_cache(), model.new_cache()
            model.last_logits(ids[:8], stepped)
            model.last_logits(ids[:8], verified)
            one_by_one = torch.stack([model.last_logits(ids[i:i + 1], stepped) for i in range(8, 8 + rows)])
            together = verify_rows(model, ids[8:8 + rows], verified)
            assert verified.length == stepped.length == 8 + rows
            if shape == "float16":
                assert torch.equal(together, one_by_one)
            else:
                assert torch.allclose(together, one_by_one, atol=1e-5, rtol=0)
            assert torch.equal(together.argmax(-1), one_by_one.argmax(-1))


def test_a_model_reciting_its_training_text_takes_most_drafts_in_fewer_passes(models):
    model = models["float16"]
    C, V = model.config.context_length, model.config.vocab_size
    prompt = _prompt(V, 7)
    params = SamplingParams(temperature=0, max_new_tokens=C - len(prompt))
    expected = _tokens(model, prompt, params.with_changes(draft="off"), 0)
    stats = DraftStats("corpus")
    recited = build_index(prompt + expected, NO_NEWLINES)
    got = _tokens(model, prompt, params.with_changes(draft="corpus"), 0, recited, stats)
    assert got == expected
    assert stats.acceptance() > 0.9
    assert stats.passes < len(expected) / 3
    assert stats.as_json(len(got))["tokens_per_pass"] > 3


def test_past_the_window_under_the_books_crop_nothing_is_drafted_and_the_stats_say_so(models):
    model = models["float32"]
    C, V = model.config.context_length, model.config.vocab_size
    prompt = _prompt(V, 1)
    params = SamplingParams(temperature=0, max_new_tokens=C + 20, draft="context")
    stats = DraftStats("context")
    got = _tokens(model, prompt, params, 0, None, stats)
    assert got == _tokens(model, prompt, params.with_changes(draft="off"), 0)
    # The token after a full window is still the window's own step; every one after it crops.
    assert stats.past_window == len(prompt) + len(got) - C - 1
    assert stats.passes == len(got) - stats.accepted


@pytest.mark.parametrize("preset", PRESETS)
def test_where_the_output_layer_dominates_the_model_drafts_for_itself_and_most_drafts_hold(models, preset):
    """Random weights spread their probability over the whole vocabulary, so the cut vocabulary (the bias's
    favourites, here all of it) holds it all and the drafts, drawn with the real draws' uniform numbers,
    are the tokens drawn: the text is the same and far fewer passes give it."""
    model = models["float16"]
    assert worth_drafting_with_the_head(model) and not worth_drafting_with_the_head(models["float32"])
    C, V = model.config.context_length, model.config.vocab_size
    params = load_presets().get(preset).params.with_changes(max_new_tokens=C - 7)
    for seed in range(5):
        prompt = _prompt(V, seed)
        expected = _tokens(model, prompt, params.with_changes(draft="off"), seed)
        stats = DraftStats("auto")
        assert _tokens(model, prompt, params, seed, None, stats) == expected
        assert stats.acceptance() > 0.9 and stats.passes < len(expected) / 3, stats


def test_drafting_off_verifies_nothing(models):
    model = models["float32"]
    stats = DraftStats("off")
    _tokens(model, [1, 2, 3, 1, 2, 3, 1, 2], SamplingParams(temperature=0, max_new_tokens=30, draft="off"), 0,
            None, stats)
    assert (stats.drafted, stats.accepted, stats.passes) == (0, 0, 30)


def test_the_draft_key_takes_four_policies_and_names_them_when_refused():
    assert SamplingParams().draft == "auto"
    for policy in ("auto", "context", "corpus", "off"):
        assert params_from_mapping({"draft": policy}).draft == policy
    with pytest.raises(PresetError, match="draft must be one of auto, context, corpus, off, got 'sometimes'"):
        params_from_mapping({"draft": "sometimes"})


def test_the_drafting_bench_reports_both_rates_and_checks_every_text(small_model, tmp_path, capsys):
    import json

    from tfchat.core.commands.bench.draft_speed import run_drafting_bench

    corpus = tmp_path / "trained_on.txt"
    corpus.write_text("The customer listens. The customer buys. The team sells.\n" * 40, encoding="utf-8")
    assert run_drafting_bench(str(small_model), str(corpus), tokens=6, shapes=False) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(figures) == 6  # grounded and ungrounded, greedy and balanced, then greedy beside a busy core
    for label, row in figures.items():
        assert row["same_text"] is True, label
        assert row["off_tok_s"] > 0 and row["draft_tok_s"] > 0 and 0 <= row["acceptance"] <= 1
