"""Run in vLLM's own environment (it pins its own torch), not tfchat's: greedy generations through vLLM's
offline `LLM`, for tests/export/test_vllm.py.

    python vllm_offline.py JOBS.json RESULTS.json

JOBS: [{"folder", "impl" ("transformers" or "auto"), "prompts": [[ids], ...], "max_tokens", "logprobs"}].
RESULTS: one entry a job: for each prompt the new ids and, per step, {id: logprob} of the top alternatives.
The jobs run one after the other in this process, one `LLM` at a time.
"""
import gc
import json
import os
import sys

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: nothing to reap
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM would otherwise reserve a share of the RAM
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(job: dict) -> list[dict]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    # Compiled, as vLLM runs a model by default (torch.compile of the forward): the path its users get.
    llm = LLM(model=job["folder"], trust_remote_code=True, model_impl=job["impl"], dtype="float32", seed=0)
    params = SamplingParams(temperature=0, max_tokens=job["max_tokens"], logprobs=job["logprobs"])
    outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in job["prompts"]], params, use_tqdm=False)
    results = []
    for output in outputs:
        completion = output.outputs[0]
        results.append({"ids": list(completion.token_ids),
                        "logprobs": [{str(k): v.logprob for k, v in step.items()} for step in completion.logprobs]})
    del llm
    gc.collect()
    return results


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        jobs = json.load(file)
    results = [run(job) for job in jobs]
    with open(sys.argv[2], "w", encoding="utf-8") as file:
        json.dump(results, file)


if __name__ == "__main__":
    main()
