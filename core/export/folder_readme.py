"""The README.md of an exported folder: what the model is, and how to load and serve it."""
from __future__ import annotations

from tfchat.core.nn.checkpoint import Checkpoint


def _h_params_table(h_params: dict) -> str:
    rows = "\n".join(f"| `{key}` | {value} |" for key, value in h_params.items())
    return f"| h_param | value |\n| --- | --- |\n{rows}"


def model_card(checkpoint: Checkpoint, name: str, dtype: str, training_text: str | None, head_dim: int) -> str:
    config = checkpoint.config
    window = config.context_length
    trained_on = training_text or "not recorded in the checkpoint"
    extra_row = ("" if config.embedding_rows == config.vocab_size else
                 f" Its embedding has {config.embedding_rows:,} rows, one more than the output layer, as the "
                 "repository's model.py makes it.")
    heads_line = ("" if checkpoint.config.head_size == head_dim else
                  f"Its heads of {config.head_size} are stored padded with zeros to {head_dim} (`head_dim`), a size "
                  f"attention kernels take; the scale stays 1/sqrt({config.head_size}), so nothing changes.\n")
    return f"""---
library_name: transformers
tags: [tfchat, transformer-from-scratch, custom_code]
---
# {name}

A decoder-only transformer trained with the book *Transformer from scratch* (chapters 18-20), exported
from `{checkpoint.path.name}` ({checkpoint.layout}) by `tfchat export`.

- Parameters: {checkpoint.parameter_count:,}
- Shape: d_model {config.d_model}, {config.num_heads} heads of {config.head_size}, {config.num_blocks} blocks,
  a window of {window} tokens, {config.vocab_size:,} output tokens.{extra_row}
- Weights: `model.safetensors`, {dtype}, the book's values; each block's per-head Wq/Wk/Wv stacked into
  `qkv_proj` in head order.
- Tokenizer: tiktoken's `cl100k_base` as `tokenizer.json`: the same ids as tiktoken.
- Training text: {trained_on}

{_h_params_table(checkpoint.h_params)}

## Load it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("PATH")
model = AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)
ids = tokenizer("Once upon a time", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=50)[0]))
```

`generation_config.json` holds tfchat's preset for it; pass `do_sample=False` for greedy decoding. The
architecture is in `modeling_book_gpt.py` (hence `trust_remote_code`): the book's model, its attention
called through transformers' attention interface (`attn_implementation="eager"` or `"sdpa"`), with a
transformers KV cache.

## Past the window

The book's `generate` crops its input to the last {window} tokens before every new token and runs the
whole window again, so its text past the window depends on tokens the cache no longer has. Transformers
has no such crop: this model refuses a position at or past {window}, so keep prompt plus new tokens within
{window} tokens here, or generate with `tfchat` (which crops exactly as the book does, or shifts the
window with `window: shift`).

## Serve it

vLLM's Transformers backend runs this folder, exactly (tfchat's tests run it):

    vllm serve PATH --trust-remote-code --model-impl transformers --dtype float32
    tfchat --endpoint http://HOST:8000/v1

{heads_line}vLLM serves at most the window of {window} tokens and does not crop past it as the book does.

tfchat opens the folder itself too: `tfchat --model PATH`.
"""
