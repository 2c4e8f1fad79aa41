"""cl100k_base as a Hugging Face tokenizer (`tokenizer.json`), built from the ranks tfchat ships.

A tiktoken encoding is a byte-level BPE whose merge order is its ranks: the pair merged first is the one
whose joined bytes have the lowest rank. The `tokenizers` library's BPE merges by a list's order, so the
list holds, for every token, each way to split it into two tokens, ordered by the token's rank; with
`ignore_merges` a piece that is a whole token is taken at once, as tiktoken does. Tokens are spelled in
GPT-2's byte-to-character alphabet, as byte-level BPE files are. The special tokens keep tiktoken's ids.
"""
from __future__ import annotations

from functools import lru_cache

from tfchat.core.engine.folder_tokenizer import CHAR_OF

# cl100k_base's split pattern as Hugging Face's tiktoken conversions write it: tiktoken's own spelling
# uses possessive quantifiers (`\p{N}{1,3}+`) that the `tokenizers` regex engine reads otherwise; this
# form splits the same.
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    def spelled(token: bytes) -> str:
        return "".join(CHAR_OF[b] for b in token)

    vocab = {spelled(token): rank for token, rank in ranks.items()}
    merges = []
    for token, rank in ranks.items():
        splits = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        splits.sort(key=lambda pair: (ranks[pair[0]], ranks[pair[1]]))
        merges += [(rank, left, right) for left, right in splits]
    merges.sort(key=lambda merge: merge[0])
    return vocab, [(spelled(left), spelled(right)) for _, left, right in merges]


@lru_cache(maxsize=2)
def tokenizer_json(encoding_name: str) -> str:
    """The whole tokenizer.json for a tiktoken encoding (cl100k_base's takes a few seconds: cached)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    from tfchat.core.engine.tokenizer import load_encoding

    encoding = load_encoding()
    assert encoding.name == encoding_name, encoding.name
    vocab, merges = vocab_and_merges(encoding._mergeable_ranks)
    specials = dict(sorted(encoding._special_tokens.items(), key=lambda item: item[1]))
    vocab.update(specials)  # in the model's vocabulary too, so each keeps its own id, gaps and all
    tokenizer = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(text, normalized=False, special=True) for text in specials])
    return tokenizer.to_str()


def tokenizer_config(context_length: int) -> dict:
    """tokenizer_config.json: the fast tokenizer over tokenizer.json, with the book's end-of-text token."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context_length,
        "eos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
        "add_bos_token": False,
        "add_eos_token": False,
    }
