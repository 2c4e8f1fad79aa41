"""Building a corpus index from a text's token ids: the suffix array (torch), and where its lines begin.

The only part of the index that needs torch: a command builds it in its own process, and the app has a
child process build it (`build_in_child`), so the app's own process never loads torch.
"""
from __future__ import annotations

import ctypes
from array import array

import torch

from tfchat.core.corpus.index import CorpusIndex
from tfchat.core.corpus.suffix_array import build_suffix_array


def as_int32_array(values: torch.Tensor) -> array:
    """The tensor's values in an int32 `array`, copied in one memcpy (bytes() of a storage goes byte by byte)."""
    flat = values.to(torch.int32).contiguous()
    out = array("i")
    out.frombytes(ctypes.string_at(flat.data_ptr(), flat.numel() * flat.element_size()) if flat.numel() else b"")
    return out


def build_index(ids: list[int], newlines: list[int]) -> CorpusIndex:
    """The index of `ids`; `newlines[token]` is how many newlines each token of the vocabulary holds."""
    tokens = torch.frombuffer(array("i", ids), dtype=torch.int32) if ids else torch.empty(0, dtype=torch.int32)
    suffixes = build_suffix_array(tokens)
    table = torch.tensor(newlines, dtype=torch.int64)
    inside = tokens.to(torch.int64)
    per_token = torch.where(inside < table.numel(), table[inside.clamp(max=table.numel() - 1)], 0)
    where = torch.nonzero(per_token, as_tuple=True)[0]
    newline_ends = torch.repeat_interleave(where + 1, per_token[where])
    return CorpusIndex(as_int32_array(tokens), as_int32_array(suffixes), as_int32_array(newline_ends))
