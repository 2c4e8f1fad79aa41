"""`tfchat bench --llama-cpp DIR`: tfchat against llama.cpp on the same GPT-2-shaped model, side by side.

The peer a CPU user would otherwise pick. DIR holds llama.cpp's `bin/llama-bench` and a `gpt2-to-gguf`
converter (`../shared/peers/llama.cpp` on the project's machines): a tool to measure with, never a
dependency. One random GPT-2 small folder (124M parameters: D=768, 12 heads, 12 blocks, 1024
positions, 50,257 tokens; a small byte-level BPE tokenizer, which the converter pads) is converted
to GGUF at each weight width: float32, float16 and 8 bits (llama.cpp's Q8_0 against tfchat's
`--weights int8`). Each decodes `tokens` new tokens from a short prompt, llama.cpp on one thread and
on two, tfchat as it runs by default; rounds interleaved (a noisy machine slows all alike), the best
of each kept; then all again beside a process burning one core. Needs transformers and tokenizers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import torch

from tfchat.core.commands.bench.measures import decode_rate, engine_step_times, print_table, random_ids
from tfchat.core.commands.bench.neighbour import busy_neighbour
from tfchat.core.errors import TfchatError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.helper_thread import helper_for
from tfchat.core.system.install_hint import install_command

WIDTHS = (("float32", "f32", "exact"), ("float16", "f16", "exact"), ("8-bit", "q8_0", "int8"))
ROUNDS = 3
PROMPT_TOKENS = 8


def run_llama_cpp_bench(peer_dir: str, tokens: int = 128) -> int:
    peer = Path(peer_dir)
    llama_bench, converter = peer / "bin" / "llama-bench", peer / "gpt2-to-gguf"
    if not (llama_bench.is_file() and converter.is_file()):
        raise TfchatError(f"{peer_dir}: no bin/llama-bench and gpt2-to-gguf there (llama.cpp built as its README says)")
    with tempfile.TemporaryDirectory(prefix="tfchat-llama-") as scratch:
        folder = _random_gpt2_small(Path(scratch) / "gpt2-small")
        ggufs = {}
        for _, gguf_type, _ in WIDTHS:
            ggufs[gguf_type] = Path(scratch) / f"gpt2-small-{gguf_type}.gguf"
            converted = subprocess.run(["bash", str(converter), str(folder), str(ggufs[gguf_type]), gguf_type],
                                       env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True)
            if converted.returncode != 0:
                raise TfchatError(f"gpt2-to-gguf failed: {converted.stderr.strip().splitlines()[-1:]}")
        checkpoint = load_checkpoint(folder)
        figures = {"tokens": tokens, "prompt_tokens": PROMPT_TOKENS, "parameters": checkpoint.parameter_count}
        for busy in (False, True):
            for label, gguf_type, weights in WIDTHS:
                state = {k: v.half() if gguf_type == "f16" else v for k, v in checkpoint.state_dict.items()}
                device = torch.device("cpu")
                model = FastModel(checkpoint.config, state, device, helper_for(device), weights)
                try:
                    figures.update(_side_by_side(model, llama_bench, ggufs[gguf_type], label, tokens, busy))
                finally:
                    if model.helper is not None:
                        model.helper.close()
    _report(figures)
    return 0


def _random_gpt2_small(folder: Path) -> Path:
    try:
        from tokenizers import ByteLevelBPETokenizer
        from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    except ImportError:
        raise TfchatError(f"bench --llama-cpp builds its GPT-2 folder with transformers: {install_command('export')}") \
            from None
    bpe = ByteLevelBPETokenizer()
    text = "The ship left the harbour at dawn, and the crew watched the lights fade behind them.\n" * 50
    bpe.train_from_iterator([text], vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12))
    model.save_pretrained(folder)
    GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    return folder


def _side_by_side(model: FastModel, llama_bench: Path, gguf: Path, label: str, tokens: int, busy: bool) -> dict:
    prompt = random_ids(PROMPT_TOKENS, model.config.vocab_size, 7)
    params = SamplingParams(temperature=1.0, draft="off")  # llama-bench drafts nothing either
    engine_step_times(model, prompt, 8, params=params)  # warm-up: traces the step
    where = "busy_" if busy else ""
    best = {"tfchat": 0.0, "llama_1": 0.0, "llama_2": 0.0}
    with busy_neighbour() if busy else nullcontext():
        for seed in range(ROUNDS):
            rate = decode_rate(engine_step_times(model, prompt, tokens + 1, seed=seed, params=params))
            best["tfchat"] = max(best["tfchat"], rate)
            for threads in (1, 2):
                best[f"llama_{threads}"] = max(best[f"llama_{threads}"], _llama_rate(llama_bench, gguf, threads, tokens))
    key = label.replace("-", "")
    figures = {f"{where}{key}_{name}_tokens_per_s": round(rate, 2) for name, rate in best.items()}
    figures[f"{where}{key}_ratio_to_llama_best"] = round(best["tfchat"] / max(best["llama_1"], best["llama_2"]), 3)
    return figures


def _llama_rate(llama_bench: Path, gguf: Path, threads: int, tokens: int) -> float:
    run = subprocess.run([str(llama_bench), "-m", str(gguf), "-p", "0", "-n", str(tokens), "-t", str(threads),
                          "-r", "1", "-o", "jsonl"], capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise TfchatError(f"llama-bench failed: {run.stderr.strip().splitlines()[-1:]}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return float(rows[-1]["avg_ts"])


def _report(r: dict) -> None:
    rows = [("model", f"random GPT-2 small ({r['parameters']:,} parameters), {r['prompt_tokens']}-token prompt, "
                      f"{r['tokens']} new tokens, best of {ROUNDS} interleaved rounds")]
    for busy in (False, True):
        where = "busy_" if busy else ""
        for label, _, _ in WIDTHS:
            key = label.replace("-", "")
            rows.append((f"{label}{', beside a busy core' if busy else ''}",
                         f"tfchat {r[f'{where}{key}_tfchat_tokens_per_s']:.1f} tok/s; llama.cpp 1 thread "
                         f"{r[f'{where}{key}_llama_1_tokens_per_s']:.1f}, 2 threads "
                         f"{r[f'{where}{key}_llama_2_tokens_per_s']:.1f} "
                         f"({r[f'{where}{key}_ratio_to_llama_best']:.2f}x llama.cpp's best)"))
    print_table(rows, r)
