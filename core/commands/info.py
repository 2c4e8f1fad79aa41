"""`tfchat info`: what a checkpoint holds: its format, h_params, parameter count and every tensor."""
from __future__ import annotations

from tfchat.core.errors import EXIT_OK


def cmd_info(args) -> int:
    from tfchat.core.nn.checkpoint import load_checkpoint
    from tfchat.core.nn.model_card import h_params_source
    from tfchat.core.system.paths import resolve_model_path

    checkpoint = load_checkpoint(resolve_model_path(args.model))
    c = checkpoint.config
    print(f"model: {checkpoint.path}")
    print(f"format: {checkpoint.layout}")
    print(f"h_params: {h_params_source(checkpoint)}")
    rows = f" (embedding rows {c.embedding_rows})" if c.embedding_rows != c.vocab_size else ""
    print(f"d_model={c.d_model} num_heads={c.num_heads} num_blocks={c.num_blocks} "
          f"context_length={c.context_length} max_token_value={c.vocab_size}{rows}")
    if checkpoint.stored_head_size is not None:
        print(f"heads: {_stored_heads(c.head_size, checkpoint.stored_head_size)}")
    print(f"Model param size: {checkpoint.parameter_count:,}")
    for name, tensor in checkpoint.state_dict.items():
        print(f"{checkpoint.stored_name(name)}: {list(tensor.shape)} {str(tensor.dtype).replace('torch.', '')}")
    return EXIT_OK


def _stored_heads(head_size: int, stored: int) -> str:
    """How an exported folder stores its heads (`core.nn.head_padding`)."""
    if stored == head_size:
        return f"stored at their size, {head_size}"
    return (f"padded with zeros from {head_size} to {stored} in the folder (attention kernels' sizes: vLLM's); "
            f"the scale stays 1/sqrt({head_size}), read back unpadded")
