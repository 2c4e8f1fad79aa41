"""A server that refuses a text running past the model's window (vLLM) is asked for what fits, and the
user is told; tfchat serve crops as the book does and is asked for everything."""
import pytest

from tfchat.core.engine.http_client import HttpBackend
from tfchat.core.errors import PromptError
from tfchat.core.settings.sampling_params import SamplingParams


def backend(owned_by: str, window: int = 128) -> HttpBackend:
    # Nothing is sent until a generation is iterated: the request is built and checked here.
    return HttpBackend("http://127.0.0.1:1/v1", None, "m", {"id": "m", "owned_by": owned_by,
                                                             "max_model_len": window})


def test_vllm_is_asked_for_the_tokens_the_window_holds_and_the_user_told():
    vllm = backend("vllm")
    prompt_tokens = len(vllm.encode("The sales team"))
    capped = vllm.generate("The sales team", SamplingParams(max_new_tokens=200))
    assert capped._body["max_tokens"] == 128 - prompt_tokens
    assert "window of 128 tokens" in capped.notice and "does not crop as the book does" in capped.notice
    until_stopped = vllm.generate("The sales team", SamplingParams(max_new_tokens=0))
    assert until_stopped._body["max_tokens"] == 128 - prompt_tokens  # what "until stopped" can be there
    fits = vllm.generate("The sales team", SamplingParams(max_new_tokens=20))
    assert fits._body["max_tokens"] == 20 and fits.notice is None
    branch = vllm.generate("The sales team", SamplingParams(max_new_tokens=200), forced_ids=(11, 12, 13))
    assert branch._body["max_tokens"] == 128 - prompt_tokens - 3  # the chosen tokens are prompt there


def test_a_prompt_that_fills_vllms_window_is_one_clear_line():
    with pytest.raises(PromptError, match="serves at most the model's window of 8"):
        backend("vllm", window=8).generate("one two three four five six seven eight nine", SamplingParams())


def test_tfchat_serve_crops_as_the_book_does_so_it_is_asked_for_everything():
    generation = backend("tfchat").generate("The sales team", SamplingParams(max_new_tokens=200))
    assert generation._body["max_tokens"] == 200 and generation.notice is None
