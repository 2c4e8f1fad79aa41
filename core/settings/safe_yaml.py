"""YAML from files a user wrote, read within bounds.

PyYAML's safe loader runs no code, but it still trusts sizes: a few hundred
bytes of nested aliases describe billions of nodes (anything that walks the
result, a repr in an error message included, then takes gigabytes), deep
nesting overflows the recursive composer, and a large file takes minutes. So a
file is bounded in size, its events are first counted without building
anything (aliases at their expanded size, and nesting depth), and only then
loaded, with duplicate keys reported rather than silently taking the last.
"""
from __future__ import annotations

from pathlib import Path

import yaml

MAX_FILE_BYTES = 256 * 1024
MAX_NUMBER_CHARS = 40  # more digits than any setting has
MAX_NODES = 20_000  # counting every alias at its expanded size
MAX_DEPTH = 32

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser, where installed


class YamlRefused(ValueError):
    """The file is not YAML tfchat will read; the message says why, in one line."""


def read_bounded(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise YamlRefused(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise YamlRefused(f"larger than {max_bytes // 1024} KiB; a settings file is never that big")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlRefused(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


def check_shape(text: str) -> None:
    """Refuse alias bombs and deep nesting from the event stream, before any node is built."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count
    open_collections: list[list] = []  # [node count so far, anchor] per collection being read
    total = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_collections.append([1, event.anchor])
            if len(open_collections) > MAX_DEPTH:
                raise YamlRefused(f"nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            size, anchor = open_collections.pop()
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
            if not event.style and len(event.value) > MAX_NUMBER_CHARS \
                    and event.value.lstrip("+-")[:1].isdigit():
                # Plain (unquoted; libyaml says "", PyYAML None), so read as a number: Python refuses integers
                # past 4,300 digits with a ValueError.
                raise YamlRefused(f"holds a number of {len(event.value):,} characters at line "
                                  f"{event.start_mark.line + 1}")
        elif isinstance(event, yaml.AliasEvent):
            size, anchor = sizes.get(event.anchor, 1), None
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if open_collections:
            open_collections[-1][0] += size
        total += size
        if total > MAX_NODES or size > MAX_NODES:
            raise YamlRefused(f"describes more than {MAX_NODES:,} values (aliases counted in full)")


class _DuplicateKeyLoader(_Loader):
    """The safe loader, noting keys that a mapping repeats."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                self.duplicates.append(f"key {key!r} appears twice at line {key_node.start_mark.line + 1}; "
                                       "the last one counts")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                    _DuplicateKeyLoader.construct_mapping)


def load_bounded(text: str) -> tuple[object, list[str]]:
    """The document and the warnings about it; YamlRefused when it is not acceptable."""
    try:
        check_shape(text)
        loader = _DuplicateKeyLoader(text)
        try:
            return loader.get_single_data(), loader.duplicates
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise YamlRefused(f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None


def load_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[object, list[str]]:
    return load_bounded(read_bounded(path, max_bytes))
