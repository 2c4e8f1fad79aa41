"""JSON read as untrusted input (a safetensors header, a folder's config.json): bounded in depth and in the
size of its numbers, NaN and Infinity refused (JSON has neither), and every failure one line."""
from __future__ import annotations

import json

from tfchat.core.errors import TfchatError

MAX_DEPTH = 64  # a config or a header is a few levels deep; Python's parser would recurse until it fails
MAX_NUMBER_CHARS = 40  # more digits than any size or setting has (Python refuses past 4,300 with a ValueError)


class _Refused(ValueError):
    pass


def _number(text: str, kind):
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"holds a number of {len(text):,} characters")
    return kind(text)


def _constant(name: str):
    raise _Refused(f"holds {name}, which JSON does not allow")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return depth
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(data: bytes | str, name: str, error: type[TfchatError] = TfchatError) -> object:
    """The value `data` holds; `error` with one line naming `name` when it is not JSON within the bounds."""
    try:
        value = json.loads(data, parse_int=lambda t: _number(t, int), parse_float=lambda t: _number(t, float),
                           parse_constant=_constant)
    except RecursionError:
        raise error(f"{name}: nested more than {MAX_DEPTH} levels deep; not a file tfchat reads") from None
    except _Refused as exc:
        raise error(f"{name}: {exc}; not a file tfchat reads") from None
    except (UnicodeDecodeError, ValueError):
        raise error(f"{name}: not readable JSON (corrupt or truncated)") from None
    if _depth(value) > MAX_DEPTH:
        raise error(f"{name}: nested more than {MAX_DEPTH} levels deep; not a file tfchat reads")
    return value
