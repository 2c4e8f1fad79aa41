"""The book's loop alone, in a fresh interpreter without tfchat's allocator tuning, as readers run it:
`python -m tfchat.core.commands.bench.book_loop D H L C V DEVICE N` prints its tokens/s."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import tfchat
from tfchat.core.commands.bench.measures import book_tokens_per_s
from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.model_config import ModelConfig


def book_tokens_per_s_plain_process(config: ModelConfig, device: torch.device, n: int) -> float | None:
    """The book's loop in a fresh interpreter without tfchat's allocator tuning, as readers run it.

    Speed does not depend on the weights' values, so random ones of the same shape serve.
    """
    args = [str(v) for v in (config.d_model, config.num_heads, config.num_blocks, config.context_length,
                             config.vocab_size, device.type, n)]
    root = Path(tfchat.__file__).resolve().parent.parent  # where `import tfchat` finds it: a checkout or site-packages
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-W", "ignore", "-m", __spec__.name, *args], capture_output=True,
                            text=True, env=env, timeout=600)
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


if __name__ == "__main__":
    d, h, l_, c, v, device_type, n_tokens = sys.argv[1:8]
    torch.manual_seed(0)
    cfg = ModelConfig(int(d), int(h), int(l_), int(c), int(v))
    dev = torch.device(device_type)
    print(book_tokens_per_s(BookModel(cfg).to(dev).eval(), cfg, dev, int(n_tokens)))
