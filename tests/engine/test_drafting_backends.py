"""Drafting where people meet it: `generate --draft/--stats`, the engine in its own process (the app's), the
steps the token cursor reads. Always the text without drafting; the figures say what drafting did."""
import json

import pytest

from tfchat.core.corpus.index_build import build_index
from tfchat.core.engine.engine_process import EngineProcess
from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.sampling_params import SamplingParams
from support.cli import tfchat

PROMPT = "The customer said the customer said"
GREEDY = SamplingParams(temperature=0, max_new_tokens=40, seed=3)


def _recited(engine: Engine) -> object:
    """An index of the model's own greedy continuation: a training text it recites."""
    plain = engine.generate(PROMPT, GREEDY.with_changes(draft="off"))
    text = "".join(plain)
    return build_index(engine.encode(PROMPT) + plain.token_ids, [0]), text


@pytest.mark.parametrize("preset", ["greedy", "balanced"])
def test_generate_drafts_by_default_and_prints_the_same_text_as_with_draft_off(small_model, preset):
    common = ("generate", "--model", str(small_model), "--preset", preset, "--seed", "5", "--max-new-tokens", "30",
              "--stats", "One two three. One two three. One two three. One two")
    drafted, plain = tfchat(*common), tfchat(*common, "--draft", "off")
    assert drafted.returncode == plain.returncode == 0
    assert drafted.stdout == plain.stdout
    assert "drafting" not in json.loads(plain.stderr.strip().splitlines()[-1])  # nothing drafted, nothing said


def test_a_corpus_given_to_generate_drafts_from_the_training_text(small_model, tmp_path):
    engine = Engine.load(small_model, "cpu")
    try:
        text = PROMPT + "".join(engine.generate(PROMPT, GREEDY.with_changes(draft="off")))
    finally:
        engine.close()
    corpus = tmp_path / "trained_on.txt"
    corpus.write_text("Some other words first.\n" + text + "\n", encoding="utf-8")
    common = ("generate", "--model", str(small_model), "--preset", "greedy", "--max-new-tokens", "40", "--stats",
              "--corpus", str(corpus), PROMPT)
    drafted = tfchat(*common, "--draft", "corpus")
    plain = tfchat(*common, "--draft", "off")
    assert drafted.stdout == plain.stdout
    figures = json.loads(drafted.stderr.strip().splitlines()[-1])["drafting"]
    assert figures["draft"] == "corpus" and figures["drafted"] >= figures["accepted"] > 0
    assert figures["acceptance"] > 0.5 and figures["passes"] < 40
    assert figures["tokens_per_pass"] == pytest.approx(40 / figures["passes"], abs=1e-3)


def test_the_engine_process_drafts_from_a_training_text_sent_before_the_next_generation(small_model):
    engine = Engine.load(small_model, "cpu")
    remote = EngineProcess.load(small_model, "cpu")
    try:
        index, expected = _recited(engine)
        remote.use_training_text(index)
        generation = remote.generate(PROMPT, GREEDY.with_changes(draft="corpus"), top_logprobs=3)
        assert "".join(generation) == expected
        drafting = generation.stats.drafting
        assert drafting["acceptance"] > 0.5 and drafting["passes"] < len(generation.steps) / 2
        # The token cursor's steps mark the drafted tokens taken, one a draft taken.
        assert sum(step.drafted for step in generation.steps) == drafting["accepted"]
    finally:
        remote.close()
        engine.close()


def test_in_process_steps_mark_exactly_the_drafts_taken(small_model):
    engine = Engine.load(small_model, "cpu")
    try:
        index, expected = _recited(engine)
        engine.use_training_text(index)
        generation = engine.generate(PROMPT, GREEDY.with_changes(draft="auto"), top_logprobs=3)
        assert "".join(generation) == expected
        marked = [i for i, step in enumerate(generation.steps) if step.drafted]
        assert len(marked) == generation.stats.drafting["accepted"] > 0
        assert marked == generation.drafting.taken_at
        assert "drafts " in " ".join(generation.stats.figures())  # the stats line under the exchange
    finally:
        engine.close()
