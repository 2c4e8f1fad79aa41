"""Samplers: the book's distribution extended by top-p, min-p and repetition penalty."""
import pytest
import torch

from tfchat.core.errors import PresetError
from tfchat.core.decode.sampling import apply_repetition_penalty, filtered_probs, next_token
from tfchat.core.settings.sampling_params import SamplingParams
from support.reference import reference_probs


def engine_probs(logits, params, window=torch.tensor([], dtype=torch.long)):
    logits = apply_repetition_penalty(logits, window, params.repetition_penalty)
    candidates, probs = filtered_probs(logits, params)
    full = torch.zeros(logits.shape[0], dtype=torch.float64)
    if candidates is None:
        full += probs.double()
    else:
        full[candidates] = probs.double()
    return full / full.sum()


def empirical(logits, params, n, window=torch.tensor([], dtype=torch.long), seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.zeros(logits.shape[0], dtype=torch.float64)
    for _ in range(n):
        counts[int(next_token(logits, params, window, g))] += 1
    return counts / n


LOGITS = torch.tensor([2.0, 1.5, 1.5, 1.0, 0.3, 0.0, -0.5, -1.0, -2.0, -3.0, 0.7, 1.2])

CASES = [
    dict(temperature=1.0),
    dict(temperature=0.5),
    dict(temperature=1.0, top_k=3),  # ties at the 3rd value (1.5, 1.5) kept
    dict(temperature=0.8, top_k=2),
    dict(temperature=1.0, top_p=0.6),
    dict(temperature=1.3, min_p=0.2),
    dict(temperature=1.0, repetition_penalty=1.8),
    dict(temperature=0.7, top_k=6, top_p=0.9, min_p=0.05, repetition_penalty=1.3),
]


@pytest.mark.parametrize("case", CASES)
def test_filtered_distribution_equals_the_reference(case):
    params = SamplingParams(**case)
    window = torch.tensor([0, 0, 3, 8, 11])
    expected = reference_probs(LOGITS, case.get("temperature", 1.0), case.get("top_k"), case.get("top_p", 1.0),
                               case.get("min_p", 0.0), case.get("repetition_penalty", 1.0), window.tolist())
    torch.testing.assert_close(engine_probs(LOGITS, params, window), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[7]])
def test_draws_follow_the_distribution(case):
    params = SamplingParams(**case)
    window = torch.tensor([0, 0, 3, 8, 11])
    expected = reference_probs(LOGITS, case.get("temperature", 1.0), case.get("top_k"), case.get("top_p", 1.0),
                               case.get("min_p", 0.0), case.get("repetition_penalty", 1.0), window.tolist())
    observed = empirical(LOGITS, params, 20000, window)
    total_variation = 0.5 * (observed - expected).abs().sum().item()
    assert total_variation < 0.02, total_variation
    assert (observed[expected == 0] == 0).all(), "a filtered-out token was drawn"


def test_top_p_over_a_flat_large_vocabulary_sorts_beyond_the_probe():
    logits = torch.zeros(3000)
    logits[:10] = 0.01  # nearly flat: p=0.5 needs ~1500 tokens, far past the 256 probe
    probs = engine_probs(logits, SamplingParams(top_p=0.5))
    kept = int((probs > 0).sum())
    assert 1490 <= kept <= 1510
    assert (probs[:10] > 0).all(), "the most likely tokens must be kept"
    # Which of the equal tokens fill the rest is arbitrary; the kept mass and count are not.
    expected = reference_probs(logits, top_p=0.5)
    torch.testing.assert_close(probs.sort().values, expected.sort().values, atol=1e-7, rtol=0)


def test_temperature_zero_is_argmax_after_the_penalty():
    logits = torch.tensor([1.0, 3.0, 2.9])
    assert int(next_token(logits, SamplingParams(temperature=0), torch.tensor([], dtype=torch.long), None)) == 1
    penalised = SamplingParams(temperature=0, repetition_penalty=2.0)
    assert int(next_token(logits, penalised, torch.tensor([1]), None)) == 2


def test_at_least_one_token_survives_the_strictest_filters():
    params = SamplingParams(temperature=0.1, top_k=1, top_p=0.01, min_p=1.0)
    g = torch.Generator().manual_seed(0)
    draws = {int(next_token(LOGITS, params, torch.tensor([], dtype=torch.long), g)) for _ in range(50)}
    assert draws == {0}


def test_a_fixed_seed_reproduces_the_draws():
    params = SamplingParams(temperature=1.0)
    empty = torch.tensor([], dtype=torch.long)
    a = [int(next_token(LOGITS, params, empty, torch.Generator().manual_seed(42))) for _ in range(1)]
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(42)
        runs.append([int(next_token(LOGITS, params, empty, g)) for _ in range(200)])
    assert runs[0] == runs[1] and runs[0][0] == a[0]
    assert len(set(runs[0])) > 3


@pytest.mark.parametrize("bad,key", [
    (dict(temperature=-1), "temperature"),
    (dict(top_k=-2), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(top_p=0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(min_p=2), "min_p"),
    (dict(repetition_penalty=0), "repetition_penalty"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(max_new_tokens=10**12), "max_new_tokens"),  # a typo, not a wish: the ceiling is 1,000,000
    (dict(seed=-1), "seed"),
    (dict(stop=("",)), "stop"),
    (dict(temperature=True), "temperature"),
])
def test_invalid_values_are_refused_naming_the_key(bad, key):
    with pytest.raises(PresetError, match=key):
        SamplingParams(**bad)


def test_max_new_tokens_0_is_no_limit_and_the_ceiling_is_stated():
    assert SamplingParams(max_new_tokens=0).token_limit is None
    assert SamplingParams(max_new_tokens=1_000_000).token_limit == 1_000_000
    with pytest.raises(PresetError, match="1,000,000"):
        SamplingParams(max_new_tokens=1_000_001)


def test_two_step_draws_over_a_large_vocabulary_follow_the_distribution():
    from tfchat.core.decode.sampling import _draw

    V = 10000  # 39 full blocks of 256 and a 16-entry tail
    probs = torch.zeros(V)
    hot = torch.tensor([0, 3, 255, 256, 1000, 5000, 9983, 9984, 9990, 9999])
    probs[hot] = torch.tensor([5.0, 1.0, 2.0, 2.0, 3.0, 0.5, 1.5, 2.5, 1.0, 4.0])
    expected = probs.double() / probs.sum()
    g = torch.Generator().manual_seed(3)
    counts = torch.zeros(V, dtype=torch.float64)
    for _ in range(20000):
        counts[int(_draw(probs, g))] += 1
    observed = counts / counts.sum()
    assert observed[expected == 0].sum() == 0, "a zero-probability token was drawn"
    assert 0.5 * (observed - expected).abs().sum().item() < 0.02
