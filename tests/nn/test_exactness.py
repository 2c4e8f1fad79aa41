"""The engine computes the book's model: same logits, same greedy tokens, past the window too."""
import pytest
import torch

from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.decode.generation import generate_ids
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.helper_thread import HelperThread
from support.engine_pair import engine_and_reference
from support.reference import TIE_TOLERANCE, ReferenceModel, assert_same_greedy_tokens, random_book_checkpoint

SHAPES = [
    # d_model, heads, blocks, context, vocab: head sizes 6, 9 and 20; small windows slide early
    (30, 5, 2, 8, 700),
    (36, 4, 3, 12, 1500),
    (80, 4, 2, 16, 5000),
]

@pytest.fixture(params=["one thread", "helper thread", "two readers"])
def helper(request, monkeypatch):
    """Every way the engine computes a step: on the caller alone, with the output layer halved with a
    helper thread, or (the second core idle) on two intra-op threads (`core.system.second_core`)."""
    if request.param == "one thread":
        yield None
        return
    if request.param == "two readers":
        monkeypatch.setenv("TFCHAT_READERS", "2")
    helper = HelperThread()
    yield helper
    helper.close()

@pytest.mark.parametrize("shape", SHAPES)
def test_greedy_tokens_match_the_book_loop_for_three_windows(tmp_path, shape, helper):
    model, ref = engine_and_reference(tmp_path, shape, seed=1, helper=helper)
    C, V = shape[3], shape[4]
    prompt = [int(t) for t in torch.randint(0, V, (3,), generator=torch.Generator().manual_seed(2))]
    n = 3 * C
    expected, gaps = ref.greedy(prompt, n)
    got = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=n)))
    assert len(got) == n
    assert_same_greedy_tokens(expected, got, gaps)

@pytest.mark.parametrize("shape", SHAPES)
def test_last_position_logits_match_within_1e_4_inside_and_past_the_window(tmp_path, shape, helper):
    model, ref = engine_and_reference(tmp_path, shape, seed=3, helper=helper)
    C, V = shape[3], shape[4]
    ids = [int(t) for t in torch.randint(0, V, (3 * C,), generator=torch.Generator().manual_seed(4))]
    cache = model.new_cache()
    sequence = torch.tensor(ids)
    # Prefill 2 tokens, then one token per step through the cache up to the full window.
    got = model.last_logits(sequence[:2], cache)
    torch.testing.assert_close(got, ref.next_logits(ids[:2]), atol=1e-4, rtol=0)
    for length in range(3, C + 1):
        got = model.last_logits(sequence[length - 1 : length], cache)
        torch.testing.assert_close(got, ref.next_logits(ids[:length]), atol=1e-4, rtol=0)
    # Past the window: the cropped window at positions 0..C-1, as the book computes it.
    for length in range(C + 1, 3 * C + 1):
        got = model.last_logits(sequence[length - C : length])
        torch.testing.assert_close(got, ref.next_logits(ids[:length]), atol=1e-4, rtol=0)

def test_a_prompt_longer_than_the_window_is_cropped_like_the_book(tmp_path):
    shape = (30, 5, 2, 8, 700)
    model, ref = engine_and_reference(tmp_path, shape, seed=5)
    prompt = list(range(100, 125))  # 25 tokens into an 8-token window
    expected, gaps = ref.greedy(prompt, 10)
    got = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=10)))
    mismatch = next((i for i, (e, g) in enumerate(zip(expected, got)) if e != g), None)
    assert mismatch is None or gaps[mismatch] < TIE_TOLERANCE

def test_float16_checkpoints_are_upcast_and_computed_in_float32(tmp_path, helper):
    ckpt = random_book_checkpoint(24, 3, 2, 8, 300, seed=9, dtype=torch.float16)
    path = tmp_path / "half.ckpt"
    torch.save(ckpt, path)
    loaded = load_checkpoint(path)
    model = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper)
    assert model.out_weight.dtype == torch.float32
    ids = [5, 9, 13]
    reference = ReferenceModel(ckpt)
    got = model.last_logits(torch.tensor(ids), model.new_cache())
    torch.testing.assert_close(got, reference.next_logits(ids), atol=1e-4, rtol=0)
    # float16 weights take the float16-weight output layer: still the book's logits, past the window too.
    longer = [int(t) for t in torch.randint(0, 300, (20,), generator=torch.Generator().manual_seed(1))]
    got = model.last_logits(torch.tensor(longer[-8:]))
    torch.testing.assert_close(got, reference.next_logits(longer), atol=1e-4, rtol=0)

@pytest.mark.parametrize("shape", SHAPES)
def test_past_the_window_one_row_on_keys_computed_ahead_is_the_books_window(tmp_path, shape):
    # The engine fills positions 0..C-2 of the next window ahead of time, then decodes its last row.
    model, ref = engine_and_reference(tmp_path, shape, seed=6)
    C, V = shape[3], shape[4]
    ids = [int(t) for t in torch.randint(0, V, (3 * C,), generator=torch.Generator().manual_seed(7))]
    cache = model.new_cache()
    for length in range(C + 1, 3 * C + 1):
        window = torch.tensor(ids[length - C : length])
        model.fill_cache(window[:-1], cache)
        got = model.last_logits(window[-1:], cache)
        torch.testing.assert_close(got, ref.next_logits(ids[:length]), atol=1e-4, rtol=0)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", SHAPES)
def test_on_cuda_the_graphed_decode_step_gives_the_books_greedy_tokens_and_logits(tmp_path, shape):
    """On CUDA every decode step is a CUDA graph replay (`core.nn.cuda_graph`), in the window and past it."""
    ckpt = random_book_checkpoint(*shape, seed=5)
    path = tmp_path / "m.ckpt"
    torch.save(ckpt, path)
    loaded = load_checkpoint(path)
    model, ref = FastModel(loaded.config, loaded.state_dict, torch.device("cuda")), ReferenceModel(ckpt)
    C, V = shape[3], shape[4]
    ids = [int(t) for t in torch.randint(0, V, (C,), generator=torch.Generator().manual_seed(6))]
    cache = model.new_cache()
    sequence = torch.tensor(ids, device="cuda")
    model.last_logits(sequence[:1], cache)
    for length in range(2, C + 1):
        got = model.last_logits(sequence[length - 1 : length], cache).cpu()
        torch.testing.assert_close(got, ref.next_logits(ids[:length]), atol=1e-4, rtol=0)
    assert cache.decode_graph is not None
    prompt = ids[:3]
    expected, gaps = ref.greedy(prompt, 3 * C)
    got = list(generate_ids(model, prompt, SamplingParams(temperature=0, max_new_tokens=3 * C)))
    assert_same_greedy_tokens(expected, got, gaps)

@pytest.mark.parametrize("dtype, packed", [(torch.float16, True), (torch.bfloat16, True), (torch.bfloat16, False),
                                           (torch.float32, False)])
def test_weights_float16_holds_exactly_are_read_as_float16(tmp_path, helper, dtype, packed):
    """float16 weights, and bfloat16 ones whose every value float16 holds, are multiplied by fbgemm's
    float16-weight product (half the bytes a token); a bfloat16 value float16 cannot hold (here 1e-7,
    below its precision) keeps the float32 product. Either way: the book's logits."""
    ckpt = random_book_checkpoint(32, 4, 2, 16, 500, seed=11, dtype=dtype)
    if dtype == torch.bfloat16:  # no value too small for float16's precision, then (unless packed) one
        for key, tensor in ckpt["model_state_dict"].items():
            if not key.endswith(".mask"):
                tensor[tensor.abs() < 1e-3] = 1e-3
    if dtype == torch.bfloat16 and not packed:
        for key, tensor in ckpt["model_state_dict"].items():
            if key.endswith(".weight") and tensor.dim() == 2:
                tensor.view(-1)[0] = 1.0001e-7
    path = tmp_path / "m.ckpt"
    torch.save(ckpt, path)
    loaded = load_checkpoint(path)
    model = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper)
    products = [model.blocks[0].qkv, model.blocks[0].proj, model.blocks[1].ffn_in, model.blocks[1].ffn_out]
    assert all((p.packed is not None) == packed for p in products)
    assert (model.output_layer_bytes() < 4 * 500 * 32) == packed
    full = FastModel(loaded.config, {k: v.float() for k, v in loaded.state_dict.items()}, torch.device("cpu"))
    if packed:  # half the bytes of the blocks' weights a token
        assert model.blocks[0].nbytes() < 0.55 * full.blocks[0].nbytes()
    ids = [int(t) for t in torch.randint(0, 500, (40,), generator=torch.Generator().manual_seed(2))]
    reference = ReferenceModel(ckpt)
    got = model.last_logits(torch.tensor(ids[:16]), model.new_cache())
    torch.testing.assert_close(got, reference.next_logits(ids[:16]), atol=1e-4, rtol=0)
    expected, gaps = reference.greedy(ids[:5], 30)  # through the window and past it
    assert_same_greedy_tokens(expected, list(generate_ids(model, ids[:5], SamplingParams(temperature=0,
                                                                                         max_new_tokens=30))), gaps)


def test_a_long_window_attends_over_spans_that_grow_and_gives_the_books_logits(tmp_path, helper):
    """At 512 positions and more a step attends over an eighth, a quarter, half or all of the cache,
    whichever holds its position, through one trace: across every boundary, the book's logits."""
    ckpt = random_book_checkpoint(32, 4, 2, 512, 300, seed=5)
    torch.save(ckpt, tmp_path / "m.ckpt")
    loaded = load_checkpoint(tmp_path / "m.ckpt")
    model = FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper)
    assert [model.attention_span(p) for p in (0, 63, 64, 127, 128, 255, 256, 511)] == [64, 64, 128, 128, 256,
                                                                                        256, 512, 512]
    ids = torch.randint(0, 300, (512,), generator=torch.Generator().manual_seed(3))
    reference = ReferenceModel(ckpt)
    cache = model.new_cache()
    model.last_logits(ids[:40], cache)
    for n in range(41, 512):
        logits = model.last_logits(ids[n - 1: n], cache)
        if n in (63, 64, 65, 127, 128, 129, 255, 256, 257, 300, 511):
            torch.testing.assert_close(logits, reference.next_logits(ids[:n].tolist()), atol=1e-4, rtol=0)
