"""The state-dict layouts the book's code writes, and how a layout's shape is read off its tensors.

Two naming dialects exist. The chapter's model (and the repository's scifi-demo)
names its modules `ln1`, `mha.heads.{h}.Wq`, `mask`, `model_out_linear_layer`;
the repository's top-level `model.py` names the same modules `layer_norm_1`,
`multi_head_attention_layer.heads.{h}.query_layer`, `tril`,
`language_model_out_linear_layer`, and gives its embedding one row more than its
output layer. The maths is the same, so every layout is read into the chapter's
names (the engine's) and nothing downstream needs to know which it was.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tfchat.core.nn.model_config import ModelConfig

# A key's segments that differ between dialects, by their position in the dotted key:
# 0 the top-level module, 2 a block's submodule, 5 an attention head's tensor.
_REPOSITORY_SEGMENTS = {
    (0, "model_out_linear_layer"): "language_model_out_linear_layer",
    (2, "ln1"): "layer_norm_1",
    (2, "ln2"): "layer_norm_2",
    (2, "mha"): "multi_head_attention_layer",
    (2, "ffn"): "feed_forward_layer",
    (5, "Wq"): "query_layer",
    (5, "Wk"): "key_layer",
    (5, "Wv"): "value_layer",
    (5, "mask"): "tril",
}

# What wrappers put before every key: torch.compile's module, then DataParallel's.
WRAPPER_PREFIXES = ("_orig_mod.", "module.")


@dataclass(frozen=True)
class Dialect:
    name: str
    label: str  # in a sentence: "closest to {label}"
    description: str  # the label with what tells it apart
    extra_embedding_rows: int  # embedding rows beyond the output layer's
    segments: dict  # (position, chapter's segment) -> this dialect's segment

    def stored_name(self, key: str) -> str:
        """A key in the chapter's names, as this dialect spells it."""
        parts = key.split(".")
        return ".".join(self.segments.get((i, part), part) for i, part in enumerate(parts))

    def chapter_name(self, key: str) -> str:
        """A key in this dialect's names, as the chapter spells it."""
        back = {(i, theirs): ours for (i, ours), theirs in self.segments.items()}
        parts = key.split(".")
        return ".".join(back.get((i, part), part) for i, part in enumerate(parts))


CHAPTER = Dialect("chapter", "the chapter's module names",
                  "the chapter's module names (ln1, mha.heads.N.Wq, model_out_linear_layer)", 0, {})
REPOSITORY = Dialect("repository", "the repository's model.py names",
                     "the repository's model.py names (layer_norm_1, multi_head_attention_layer, "
                     "language_model_out_linear_layer; the embedding one row longer)", 1, _REPOSITORY_SEGMENTS)
DIALECTS = (CHAPTER, REPOSITORY)


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the book's model saves, by its chapter name, with its shape, in the model's order."""
    D, H, C, V, hs = config.d_model, config.num_heads, config.context_length, config.vocab_size, config.head_size
    shapes: dict[str, tuple[int, ...]] = {"token_embedding_lookup_table.weight": (config.embedding_rows, D)}
    for i in range(config.num_blocks):
        p = f"transformer_blocks.{i}."
        for ln in ("ln1", "ln2"):
            shapes[f"{p}{ln}.weight"] = (D,)
            shapes[f"{p}{ln}.bias"] = (D,)
        for h in range(H):
            for w in ("Wq", "Wk", "Wv"):
                shapes[f"{p}mha.heads.{h}.{w}.weight"] = (hs, D)
            shapes[f"{p}mha.heads.{h}.mask"] = (C, C)
        shapes[f"{p}mha.projection_layer.weight"] = (D, D)
        shapes[f"{p}mha.projection_layer.bias"] = (D,)
        shapes[f"{p}ffn.ffn.0.weight"] = (4 * D, D)
        shapes[f"{p}ffn.ffn.0.bias"] = (4 * D,)
        shapes[f"{p}ffn.ffn.2.weight"] = (D, 4 * D)
        shapes[f"{p}ffn.ffn.2.bias"] = (D,)
    shapes[f"transformer_blocks.{config.num_blocks}.weight"] = (D,)
    shapes[f"transformer_blocks.{config.num_blocks}.bias"] = (D,)
    shapes["model_out_linear_layer.weight"] = (V, D)
    shapes["model_out_linear_layer.bias"] = (V,)
    return shapes


# Every key the chapter's model can have, any number of blocks and heads.
_CHAPTER_KEY = re.compile(
    r"token_embedding_lookup_table\.weight|model_out_linear_layer\.(weight|bias)"
    r"|transformer_blocks\.\d+\.(weight|bias)"
    r"|transformer_blocks\.\d+\.(ln1|ln2|mha\.projection_layer|ffn\.ffn\.0|ffn\.ffn\.2)\.(weight|bias)"
    r"|transformer_blocks\.\d+\.mha\.heads\.\d+\.(Wq\.weight|Wk\.weight|Wv\.weight|mask)")


def strip_wrapper_prefixes(state: dict) -> tuple[dict, str]:
    """The state dict without what torch.compile and DataParallel put before every key, and that prefix."""
    prefix = ""
    while True:
        found = next((p for p in WRAPPER_PREFIXES
                      if state and all(isinstance(k, str) and k.startswith(p) for k in state)), None)
        if found is None:
            return state, prefix
        state = {k[len(found):]: v for k, v in state.items()}
        prefix += found


def closest_dialect(keys: list[str]) -> tuple[Dialect, int]:
    """The dialect most of `keys` are spelled in, and how many of them it recognises (chapter's on a tie)."""
    def recognised(dialect: Dialect) -> int:
        return sum(1 for key in keys if _is_spelled_in(key, dialect))
    scores = [(recognised(d), -i, d) for i, d in enumerate(DIALECTS)]
    best = max(scores, key=lambda s: (s[0], s[1]))
    return best[2], best[0]


def _is_spelled_in(key: str, dialect: Dialect) -> bool:
    chapter = dialect.chapter_name(key)
    return bool(_CHAPTER_KEY.fullmatch(chapter)) and dialect.stored_name(chapter) == key


class MissingTensor(ValueError):
    """A tensor the shape cannot be inferred without, named as the dialect spells it."""


def _indices(keys, pattern: str) -> list[int]:
    found = set()
    for key in keys:
        match = re.fullmatch(pattern, key)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


def _count_from_zero(indices: list[int]) -> int:
    """How many of 0, 1, 2, ... are present without a gap."""
    count = 0
    while count < len(indices) and indices[count] == count:
        count += 1
    return count


def infer_config(state: dict, dialect: Dialect) -> ModelConfig:
    """The architecture a state dict in the chapter's names describes, read off its tensors.

    d_model and the vocabularies from the embedding and output shapes, blocks and
    heads by counting keys, the window from the causal mask. The result is then
    checked like any h_params (bounds, divisibility) and against every tensor.
    """
    def tensor(key: str):
        if key not in state:
            raise MissingTensor(f"missing {dialect.stored_name(key)}")
        value = state[key]
        if not hasattr(value, "shape"):
            raise MissingTensor(f"{dialect.stored_name(key)} is a {type(value).__name__}, not a tensor")
        return value

    embedding = tensor("token_embedding_lookup_table.weight")
    output = tensor("model_out_linear_layer.weight")
    if embedding.dim() != 2 or output.dim() != 2:
        raise MissingTensor(f"{dialect.stored_name('token_embedding_lookup_table.weight')} and "
                            f"{dialect.stored_name('model_out_linear_layer.weight')} must be matrices")
    blocks = _count_from_zero(_indices(state, r"transformer_blocks\.(\d+)\.ln1\.weight"))
    if blocks == 0:
        raise MissingTensor(f"missing {dialect.stored_name('transformer_blocks.0.ln1.weight')}")
    heads = _count_from_zero(_indices(state, r"transformer_blocks\.0\.mha\.heads\.(\d+)\.Wq\.weight"))
    if heads == 0:
        raise MissingTensor(f"missing {dialect.stored_name('transformer_blocks.0.mha.heads.0.Wq.weight')}")
    mask = tensor("transformer_blocks.0.mha.heads.0.mask")
    vocab, d_model = int(output.shape[0]), int(embedding.shape[1])
    return ModelConfig(d_model=d_model, num_heads=heads, num_blocks=blocks,
                       context_length=int(mask.shape[-1]) if mask.dim() else 0, vocab_size=vocab,
                       embedding_rows=int(embedding.shape[0]))


def inferred_h_params(config: ModelConfig) -> dict:
    """The architecture keys of `h_params` as the book would have written them for this model."""
    return {"d_model": config.d_model, "num_heads": config.num_heads, "num_blocks": config.num_blocks,
            "context_length": config.context_length, "max_token_value": config.vocab_size}
