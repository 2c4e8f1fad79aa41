"""The inside views against the tests' own reference model: attention, scores and switched-off heads,
in the window and past it (where the book crops to the last context_length tokens)."""
import math

import pytest
import torch

from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import PromptError
from support.reference import ReferenceModel

TOL = 1e-4
TEXT = ("The customer wants value, and the sales team listens to every word they say, again and again, "
        "until the deal is closed and everyone goes home.")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The engine and the reference on one checkpoint with a window of 16 (the text is longer)."""
    from support.reference import random_book_checkpoint

    checkpoint = random_book_checkpoint(32, 4, 3, 16, 100256, seed=11)
    path = tmp_path_factory.mktemp("inside") / "m.ckpt"
    torch.save(checkpoint, path)
    engine = Engine.load(path, "cpu")
    yield engine, ReferenceModel(checkpoint)
    engine.close()


def test_attention_is_the_books_scores_and_weights_for_the_window_it_saw(pair):
    engine, reference = pair
    ids = engine.encode(TEXT)
    assert len(ids) > 16
    for cut in (5, 16, len(ids)):  # inside the window, exactly full, and past it (cropped)
        context = engine.encoding.decode(ids[:cut])
        maps = engine.attention(context)
        window = ids[:cut][-16:]
        assert list(maps.tokens) == window
        expected = {}
        reference.logits(window, attention=expected)
        for (layer, head), (scores, weights) in expected.items():
            got_w = torch.tensor(maps.weight_rows(layer, head))
            got_s = torch.tensor(maps.score_rows(layer, head))
            assert torch.allclose(got_w, weights, atol=TOL), (cut, layer, head)
            assert torch.allclose(got_s, scores, atol=TOL), (cut, layer, head)
            assert torch.allclose(got_w.sum(dim=1), torch.ones(len(window)), atol=1e-5)
            assert bool((got_w.triu(1) == 0).all())
            assert maps.last_row(layer, head) == maps.weight_rows(layer, head)[-1]


def test_a_branch_point_inside_a_text_sees_the_forced_tokens(pair):
    engine, _ = pair
    ids = engine.encode("The customer wants")
    maps = engine.attention("The customer", forced_ids=tuple(ids[2:]))
    assert list(maps.tokens) == ids


def _reference_logprobs(reference, ids, off=()):
    """Each token after the first given its last C tokens, one window at a time (the book's crop)."""
    out = []
    for i in range(1, len(ids)):
        window = ids[max(0, i - reference.C): i]
        logits = reference.logits(window, off=off)[-1]
        out.append(torch.log_softmax(logits, dim=-1))
    return out


@pytest.mark.parametrize("off", [(), ((0, 1),), ((1, 0), (2, 3))])
def test_scores_are_the_books_log_probabilities_past_the_window_too_with_heads_switched_off(pair, off):
    engine, reference = pair
    ids = engine.encode(TEXT)
    scored = engine.score(TEXT, off)
    assert scored.first == ids[0] and [t.id for t in scored.tokens] == ids[1:]
    expected = _reference_logprobs(reference, ids, off)
    for token, logprobs in zip(scored.tokens, expected):
        assert abs(token.logprob - float(logprobs[token.id])) < TOL
        own = logprobs[token.id]  # a rank deep in the tail may differ by the last bits' ties
        assert int((logprobs > own + 1e-5).sum()) + 1 <= token.rank <= int((logprobs > own - 1e-5).sum()) + 1
        assert abs(token.entropy - float(-(logprobs.exp() * logprobs).sum())) < TOL
        assert token.top[0][0] == int(logprobs.argmax())
    loss = -sum(float(lp[t]) for lp, t in zip(expected, ids[1:])) / (len(ids) - 1)
    assert abs(scored.loss - loss) < TOL and abs(scored.perplexity - math.exp(loss)) < TOL * math.exp(loss)


def test_switching_a_head_off_changes_the_next_token_as_the_reference_says(pair):
    engine, reference = pair
    ids = engine.encode(TEXT)
    chosen = ids[20]
    context = engine.encoding.decode(ids[:20])
    for off in ((), ((0, 0),), ((2, 1), (2, 2))):
        result = engine.next_token(context, off=off, chosen=chosen)
        probs = torch.softmax(reference.logits(ids[4:20], off=off)[-1], dim=-1)
        assert abs(result.chosen_logprob - math.log(float(probs[chosen]))) < TOL
        assert [i for i, _ in result.top] == torch.topk(probs, len(result.top)).indices.tolist()
        assert all(abs(p - float(probs[i])) < TOL for i, p in result.top)
    assert engine.next_token(context, off=((0, 0),)).top != engine.next_token(context).top


def test_heads_the_model_lacks_and_texts_too_short_are_one_line(pair):
    engine, _ = pair
    with pytest.raises(PromptError, match="layers 0-2 and heads 0-3"):
        engine.score(TEXT, ((3, 0),))
    with pytest.raises(PromptError, match="layers 0-2 and heads 0-3"):
        engine.next_token("Hello", off=((0, 4),))
    with pytest.raises(PromptError, match="at least two tokens"):
        engine.score("Hi")


def test_scoring_many_windows_is_the_same_as_scoring_them_one_at_a_time(pair, monkeypatch):
    import tfchat.core.nn.inspection as inspection

    engine, _ = pair
    text = TEXT * 3
    together = engine.score(text)
    monkeypatch.setattr(inspection, "WINDOWS_PER_PASS", 1)
    alone = engine.score(text)
    assert max(abs(a.logprob - b.logprob) for a, b in zip(together.tokens, alone.tokens)) < 1e-5
