"""Text streaming: whole characters only, equal to decoding everything; stops; cancel; bad prompts."""
import threading

import pytest

from tfchat.core.engine.in_process import Engine
from tfchat.core.errors import PromptError
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.engine.text_stream import StopFilter
from tfchat.core.engine.tokenizer import IncrementalDecoder, encode_prompt, load_encoding


def test_cjk_split_across_tokens_streams_as_whole_characters():
    enc = load_encoding()
    ids = enc.encode("农夫山泉 ")
    assert len(ids) == 8  # cl100k splits these characters across tokens
    decoder = IncrementalDecoder(enc)
    pieces = [decoder.push(t) for t in ids] + [decoder.flush()]
    assert "".join(pieces) == "农夫山泉 "
    assert all("\ufffd" not in p for p in pieces)
    assert "" in pieces  # a token that ends mid-character yields nothing until completed


def test_stream_of_arbitrary_tokens_equals_bulk_decode():
    enc = load_encoding()
    ids = list(range(150, 400)) + enc.encode("naïve café 日本語テキスト 🙂") + [130, 200, 245]
    decoder = IncrementalDecoder(enc)
    streamed = "".join(decoder.push(t) for t in ids) + decoder.flush()
    assert streamed == enc.decode(ids)


def test_the_engine_never_streams_half_a_character(small_model):
    engine = Engine.load(small_model, "cpu")
    gen = engine.generate("农夫山泉 ", SamplingParams(temperature=1.0, max_new_tokens=120, seed=3))
    pieces = list(gen)
    assert "".join(pieces) == engine.encoding.decode(gen.token_ids)
    # Random weights emit arbitrary byte tokens; every piece must still be whole text.
    for piece in pieces:
        piece.encode("utf-8")


@pytest.mark.parametrize("chunks,stops,shown,stopped", [
    (["Hello", " wor", "ld\n\nNext"], ("\n\n",), "Hello world", True),
    (["a", "b", "<", "/", "s", ">", "c"], ("</s>",), "ab", True),
    (["a<", "/x", "y"], ("</s>",), "a</xy", False),
    (["END"], ("END",), "", True),
])
def test_stop_strings_cut_the_text_and_are_not_shown(chunks, stops, shown, stopped):
    f = StopFilter(stops)
    out, hit = "", False
    for c in chunks:
        piece, hit = f.feed(c)
        out += piece
        if hit:
            break
    if not hit:
        out += f.flush()
    assert (out, hit) == (shown, stopped)


def test_generation_ends_at_a_stop_string(small_model):
    engine = Engine.load(small_model, "cpu")
    free = engine.generate("The", SamplingParams(temperature=0, max_new_tokens=40))
    text = "".join(free)
    stop = text[5:8]
    assert stop
    gen = engine.generate("The", SamplingParams(temperature=0, max_new_tokens=40, stop=(stop,)))
    assert "".join(gen) == text[: text.index(stop)]
    assert gen.stats.finish_reason == "stop"


def test_cancel_from_another_thread_stops_within_one_token_and_keeps_the_output(small_model):
    engine = Engine.load(small_model, "cpu")
    cancel = threading.Event()
    gen = engine.generate("Once", SamplingParams(temperature=1.0, max_new_tokens=5000, seed=1), cancel)
    received = []
    for piece in gen:
        received.append(piece)
        if len(gen.token_ids) == 10:
            threading.Thread(target=cancel.set).start()
            cancel.wait()
    assert len(gen.token_ids) in (10, 11)
    assert gen.stats.finish_reason == "stopped"
    assert "".join(received) == gen.text


def test_prompt_with_tokens_beyond_the_vocabulary_names_the_text(make_checkpoint):
    engine = Engine.load(make_checkpoint(vocab_size=1000), "cpu")
    with pytest.raises(PromptError, match=r"stops at token 999.*'ighthouse'"):
        engine.generate("a lighthouse", SamplingParams())
    enc = load_encoding()
    assert encode_prompt(enc, "a b", 1000) == enc.encode("a b")


def test_empty_prompt_is_a_clear_error(small_model):
    engine = Engine.load(small_model, "cpu")
    with pytest.raises(PromptError, match="empty"):
        list(engine.generate("", SamplingParams()))


def test_a_fixed_seed_reproduces_a_generation(small_model):
    engine = Engine.load(small_model, "cpu")
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=60, seed=1234)
    a = engine.generate("Sales", params)
    b = engine.generate("Sales", params)
    assert "".join(a) == "".join(b) and a.token_ids == b.token_ids
    c = engine.generate("Sales", params.with_changes(seed=99))
    list(c)
    assert c.token_ids != a.token_ids
