"""A GPT-2 folder's own tokenizer, with the interface the engine uses of a tiktoken encoding.

Read with the `tokenizers` library, what transformers itself runs, so the ids are the folder's exactly:
`tokenizer.json` (transformers 5), else `vocab.json` + `merges.txt` (transformers 4, the book's time),
assembled as transformers assembles GPT-2's byte-level BPE. Never downloaded. Special tokens written in
a prompt are the special tokens, as transformers reads them.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from tfchat.core.errors import TfchatError, TokenizerError
from tfchat.core.system.files import not_a_file
from tfchat.core.system.json_text import parse_json


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's characters standing for bytes in byte-level BPE files (printable bytes for themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return chars


CHAR_OF = _byte_alphabet()  # byte -> character
BYTE_OF = {char: byte for byte, char in CHAR_OF.items()}  # character -> byte


def _from_vocab_and_merges(folder: Path):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.BPE.from_file(str(_checked(folder / "vocab.json")),
                                               str(_checked(folder / "merges.txt")), fuse_unk=False))
    prefix_space = _tokenizer_config(folder).get("add_prefix_space", False) is True
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [t for t in ("<|endoftext|>",) if tokenizer.token_to_id(t) is not None] + _added_tokens(folder)
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in dict.fromkeys(specials)])
    return tokenizer


# A GPT-2's tokenizer.json is 1.4 MB and the largest vocabularies' about 20 MB: beyond this, no tokenizer.
MAX_TOKENIZER_FILE_BYTES = 128 * 2**20


def _checked(path: Path) -> Path:
    """`path` when it is a regular file of a tokenizer's size; else one line saying what it is (a FIFO would
    block the tokenizers library's read for good, a huge file fill the memory)."""
    problem = not_a_file(path)
    if problem is None and path.stat().st_size > MAX_TOKENIZER_FILE_BYTES:
        problem = f"is {path.stat().st_size:,} bytes, larger than any tokenizer's"
    if problem is not None:
        raise TokenizerError(f"{path}: {problem}")
    return path


def _optional_json(path: Path) -> object:
    """A side file's JSON (tokenizer_config.json, added_tokens.json), or None when it is absent or unreadable:
    within the bounds every JSON file has (`core.system.json_text`)."""
    if not path.exists():
        return None
    try:
        with open(_checked(path), "rb") as file:
            return parse_json(file.read(MAX_TOKENIZER_FILE_BYTES + 1), str(path))
    except (OSError, TfchatError):
        return None


def _tokenizer_config(folder: Path) -> dict:
    data = _optional_json(folder / "tokenizer_config.json")
    return data if isinstance(data, dict) else {}


def _added_tokens(folder: Path) -> list[str]:
    """Special tokens a transformers 4 folder lists in tokenizer_config.json or added_tokens.json."""
    found = [entry.get("content") for entry in _tokenizer_config(folder).get("added_tokens_decoder", {}).values()
             if isinstance(entry, dict)]
    added = _optional_json(folder / "added_tokens.json")
    if isinstance(added, (dict, list)):
        found += list(added)
    return [t for t in found if isinstance(t, str) and t]


class FolderTokenizer:
    """encode / decode / decode_single_token_bytes / n_vocab / name, as tiktoken's Encoding has them."""

    def __init__(self, folder: Path):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TokenizerError("a GPT-2 folder's tokenizer needs the tokenizers package: pip install tokenizers") from None
        try:
            if os.path.lexists(folder / "tokenizer.json"):
                self._tokenizer = Tokenizer.from_file(str(_checked(folder / "tokenizer.json")))
            else:
                self._tokenizer = _from_vocab_and_merges(folder)
        except TokenizerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the tokenizers library's own errors on a damaged file
            raise TokenizerError(f"{folder}: its tokenizer files cannot be read ({str(exc)[:120]})") from None
        self.folder = folder  # another process builds the same tokenizer from it (the corpus index's)
        self.name = f"{folder.name} (its own tokenizer)"
        self.n_vocab = self._tokenizer.get_vocab_size(with_added_tokens=True)
        self._special = {i: t.content for i, t in self._tokenizer.get_added_tokens_decoder().items()}
        self.eot_token = self._tokenizer.token_to_id("<|endoftext|>")

    def encode(self, text: str, disallowed_special=(), allowed_special=()) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode_single_token_bytes(self, token: int) -> bytes:
        if token in self._special:
            return self._special[token].encode()
        piece = self._tokenizer.id_to_token(token)
        if piece is None:
            raise KeyError(token)
        if all(ch in BYTE_OF for ch in piece):
            return bytes(BYTE_OF[ch] for ch in piece)
        return piece.encode()  # not a byte-level vocabulary: the piece as written

    def decode(self, tokens) -> str:
        return b"".join(self.decode_single_token_bytes(t) for t in tokens).decode("utf-8", errors="replace")


@lru_cache(maxsize=4)
def load_folder_tokenizer(folder: Path) -> FolderTokenizer:
    return FolderTokenizer(folder)
