"""The rule for each new token exists once (`TextStream.take`): a single generation, a row of a batch and a
request to the server's scheduler give the same text and the same finish reason for the same seed.

The end-of-text case uses the book's model with the engine's end-of-text id set to a token its seeded
sampling draws: the book's model never learned <|endoftext|>, and the rule is the same whichever id it is.
"""
import threading

import pytest

from tfchat.core.engine.in_process import Engine
from tfchat.core.serve.scheduler import BatchScheduler
from tfchat.core.settings.sampling_params import SamplingParams

PROMPT = "Once upon a time"


@pytest.fixture
def engine(small_model):
    loaded = Engine.load(small_model, "cpu")
    yield loaded
    loaded.close()


def single(engine, params):
    generation = engine.generate(PROMPT, params)
    text = "".join(generation)
    return text, generation.stats.finish_reason, generation.token_ids


def batched(engine, params_list):
    batch = engine.generate_batch([PROMPT] * len(params_list), params_list)
    for _ in batch:
        pass
    return [(text, stats.finish_reason) for text, stats in zip(batch.texts, batch.stats)]


def served(engine, params):
    scheduler = BatchScheduler(engine)
    pieces, ended = [], threading.Event()
    outcome = {}

    def report(event):
        pieces.append(event.piece)
        if event.stats is not None or event.error is not None:
            outcome["reason"] = event.stats.finish_reason if event.stats else event.error
            ended.set()

    try:
        scheduler.submit(engine.encode(PROMPT), params, report)
        assert ended.wait(30)
    finally:
        scheduler.close()
    return "".join(pieces), outcome["reason"]


def same_on_every_path(engine, params_list):
    """Each params' (text, finish reason): alone, all together in one batch, and through the scheduler."""
    alone = [single(engine, params)[:2] for params in params_list]
    assert batched(engine, params_list) == alone
    assert [served(engine, params) for params in params_list] == alone
    return alone


def test_length_and_stop_strings_end_alike_on_every_path(engine):
    base = SamplingParams(temperature=1.0, seed=11, max_new_tokens=16)
    text, reason, _ = single(engine, base)
    assert reason == "length" and len(text) > 6
    stop = text[3:6]  # met in the middle: text after it is never shown, text before it is
    cut = text[: text.index(stop)]
    never_met = SamplingParams(temperature=1.0, seed=11, max_new_tokens=16, stop=("\x00never\x00",))
    # Met by the very last token the length allows: a stop, not a length, on every path.
    size = next(k for k in range(2, len(text)) if text.index(text[-k:]) == len(text) - k)
    at_the_end = base.with_changes(stop=(text[-size:],))
    results = same_on_every_path(engine, [base, base.with_changes(stop=(stop,)), never_met, at_the_end])
    assert results == [(text, "length"), (cut, "stop"), (text, "length"), (text[:-size], "stop")]


def test_end_of_text_ends_alike_on_every_path_unless_the_preset_goes_on(engine):
    base = SamplingParams(temperature=1.0, seed=3, max_new_tokens=12)
    text, _, token_ids = single(engine, base)
    engine.end_of_text_id = token_ids[5]  # the sixth token drawn ends the text now
    ended_at = token_ids.index(token_ids[5])
    results = same_on_every_path(engine, [base, base.with_changes(end_of_text="ignore")])
    assert results[1] == (text, "length")  # `end_of_text: ignore` goes on past it, to the same text
    shortened, reason = results[0]
    assert reason == "end_of_text"
    # The text is the tokens before the end of text, decoded, and a prefix of the whole.
    assert shortened == engine.encoding.decode(token_ids[:ended_at]) and text.startswith(shortened)
