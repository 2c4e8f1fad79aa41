"""Each token's probabilities and alternatives, checked against the independent reference model."""
import json
import math

import pytest
import torch

from tfchat.core.nn.inspection import layer_logits

from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import PresetError, PromptError
from tfchat.core.decode.generation import generate_ids, generate_steps
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.engine.tokenizer import token_text
from support.engine_pair import engine_and_reference

SHAPE = (30, 5, 3, 8, 700)  # d_model, heads, blocks, context, vocab: an 8-token window, passed early


@pytest.fixture
def models(tmp_path):
    return engine_and_reference(tmp_path, SHAPE, seed=11)


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0, max_new_tokens=24),
    SamplingParams(temperature=0.8, top_k=40, top_p=0.9, repetition_penalty=1.3, max_new_tokens=24, seed=3),
])
def test_logprobs_and_alternatives_equal_the_reference_inside_and_past_the_window(models, params):
    model, ref = models
    prompt = [5, 77, 300]
    steps = list(generate_steps(model, prompt, params, torch.Generator().manual_seed(1), top_logprobs=10))
    assert len(steps) == 24  # 3 + 24 tokens: 19 of the steps are past the 8-token window
    ids = list(prompt)
    for token, info in steps:
        expected = torch.log_softmax(ref.next_logits(ids), dim=0)
        assert info.id == token
        assert info.logprob == pytest.approx(float(expected[token]), abs=1e-4)
        assert [a.logprob for a in info.top] == pytest.approx(torch.topk(expected, 10).values.tolist(), abs=1e-4)
        for alternative in info.top:
            assert alternative.logprob == pytest.approx(float(expected[alternative.id]), abs=1e-4)
        probs = expected.exp()
        assert info.entropy == pytest.approx(float(-(probs * expected).sum()), abs=1e-4)
        assert 0 < info.sampled_prob <= 1
        ids.append(token)


def test_greedy_tokens_are_the_top_of_their_own_step_and_the_trace_leaves_them_unchanged(models):
    model, _ = models
    params = SamplingParams(temperature=0, max_new_tokens=20)
    traced = list(generate_steps(model, [1, 2, 3], params, top_logprobs=5))
    assert [t for t, _ in traced] == list(generate_ids(model, [1, 2, 3], params))
    for token, info in traced:
        assert info.top[0].id == token and info.sampled_prob == 1.0
        assert [a.sampled_prob for a in info.top] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_sampled_probabilities_are_the_filtered_distribution(models):
    model, _ = models
    # top_k 3: the sampler's probabilities live on three tokens, those three are the raw top three
    # (no penalty), they sum to 1 and keep the raw ratios at temperature 1.
    params = SamplingParams(temperature=1.0, top_k=3, max_new_tokens=6, seed=5)
    for token, info in generate_steps(model, [9, 8], params, torch.Generator().manual_seed(5), top_logprobs=6):
        kept = [a.sampled_prob for a in info.top[:3]]
        assert sum(kept) == pytest.approx(1.0, abs=1e-5)
        assert [a.sampled_prob for a in info.top[3:]] == [0.0, 0.0, 0.0]
        raw = [math.exp(a.logprob) for a in info.top[:3]]
        assert [k / kept[0] for k in kept] == pytest.approx([r / raw[0] for r in raw], rel=1e-4)
        assert token in [a.id for a in info.top[:3]]
        assert info.sampled_prob == pytest.approx(next(a.sampled_prob for a in info.top if a.id == token))


def test_the_same_seed_draws_the_same_tokens_with_the_trace_on(models):
    model, _ = models
    params = SamplingParams(temperature=1.0, max_new_tokens=15)
    plain = list(generate_ids(model, [4], params, torch.Generator().manual_seed(9)))
    traced = [t for t, _ in generate_steps(model, [4], params, torch.Generator().manual_seed(9), top_logprobs=20)]
    assert plain == traced


def test_the_logit_lens_last_layer_is_the_models_own_prediction(models):
    model, ref = models
    ids = list(range(40, 60))  # past the window: the lens sees the cropped window, as the book's model does
    lens = layer_logits(model, torch.tensor(ids[-8:]))
    assert lens.shape == (3, 700)
    torch.testing.assert_close(lens[-1], ref.next_logits(ids), atol=1e-4, rtol=0)
    assert not torch.allclose(lens[0], lens[-1])  # earlier layers are views of their own


def test_engine_steps_forced_tokens_and_the_lens(small_model):
    engine = Engine.load(small_model, "cpu")
    params = SamplingParams(temperature=0, max_new_tokens=5)
    base = engine.generate("The cat", params, top_logprobs=3)
    text = "".join(base)
    assert [s.id for s in base.steps] == base.token_ids and len(base.steps) == 5
    # A branch: the second alternative of the first step forced, then the model goes on from it.
    forced = base.steps[0].top[1].id
    branch = engine.generate("The cat", params, top_logprobs=3, forced_ids=(forced,))
    branch_text = "".join(branch)
    assert branch_text.startswith(token_text(engine.encoding, forced)[0]) and branch_text != text
    assert len(branch.token_ids) == 5 and branch.stats.new_tokens == 5
    assert branch.token_ids == list(generate_ids(engine.model, engine.encode("The cat") + [forced], params))
    lens = engine.logit_lens("The cat", top_n=4)
    assert len(lens) == 2 and len(lens[-1]) == 4
    assert lens[-1][0][0] == base.token_ids[0]
    assert lens[-1][0][1] == pytest.approx(math.exp(base.steps[0].logprob), abs=1e-5)
    with pytest.raises(PromptError, match="outside the model's vocabulary"):
        engine.generate("x", params, forced_ids=(10**6,))
    with pytest.raises(PresetError, match="from 0 to 20"):
        engine.generate("x", params, top_logprobs=21)
    card = engine.describe()
    assert card["parameter_count"] == engine.parameter_count and card["h_params"]["d_model"] == 32
    assert ["token_embedding_lookup_table.weight", [100256, 32], "float32"] in [list(t) for t in card["tensors"]]
    assert card["file_bytes"] == small_model.stat().st_size and card["resident_bytes"] > 0


def test_generate_logprobs_writes_openai_shaped_json_lines_that_match_the_text(small_model):
    from support.cli import tfchat

    args = ("generate", "农夫山泉", "--model", str(small_model), "--seed", "4", "--max-new-tokens", "8")
    text = tfchat(*args)
    r = tfchat(*args, "--logprobs", "3")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 8
    engine = Engine.load(small_model, "cpu")
    for entry in lines:
        assert set(entry) == {"id", "token", "bytes", "logprob", "top_logprobs"}
        assert bytes(entry["bytes"]) == engine.encoding.decode_single_token_bytes(entry["id"])
        assert len(entry["top_logprobs"]) == 3 and entry["logprob"] <= 0
        assert [a["logprob"] for a in entry["top_logprobs"]] == sorted((a["logprob"] for a in entry["top_logprobs"]),
                                                                       reverse=True)
        assert entry["logprob"] <= entry["top_logprobs"][0]["logprob"]
    # The same seed draws the same tokens: their bytes are the text generated without --logprobs.
    assert b"".join(bytes(e["bytes"]) for e in lines).decode("utf-8", errors="replace") == text.stdout[:-1]


def test_generate_trace_is_the_chapters_format(small_model):
    from support.cli import tfchat

    r = tfchat("generate", "The cat", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "3",
               "--trace")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["Initial prompt: The cat", "---", "Step 1 candidates:"]
    assert len([line for line in lines if line.startswith("Step ")]) == 3 and lines[-1] == "---"
    step = lines[3:11]  # 5 candidates, the selection, the sequence, the separator
    probabilities = [float(line.rsplit(": ", 1)[1]) for line in step[:5]]
    assert probabilities == sorted(probabilities, reverse=True) and all(0 < p <= 1 for p in probabilities)
    assert step[5] == f" -> selected: {step[0].rsplit(':', 1)[0].strip()} (sampler's probability 1.000)"
    assert step[6].startswith(" current sequence: The cat") and step[7] == "---"
    assert tfchat("generate", "x", "--model", str(small_model), "--logprobs", "21").returncode == 2
