"""The safetensors format, read and written without its package: an 8-byte little-endian header length,
a JSON header naming each tensor's dtype, shape and byte range, then the bytes.

Read as untrusted input: the header's size, every range and every shape are checked against the file
before a byte is believed, and nothing but plain float and integer tensors is accepted.
"""
from __future__ import annotations

import ctypes
import json
import mmap
import os
import struct
from pathlib import Path

import torch

from tfchat.core.errors import CheckpointError
from tfchat.core.system.json_text import parse_json

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
MAX_HEADER_BYTES = 100 * 2**20  # the package's own limit
MAX_DIMENSIONS = 8  # a model's tensors have one to four


def _header(path: Path, data: mmap.mmap, size: int) -> dict:
    if size < 8:
        raise CheckpointError(f"{path}: too short for a safetensors file ({size} bytes)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(f"{path}: its safetensors header claims {length:,} bytes; the file has {size:,}")
    header = parse_json(bytes(data[8:8 + length]), f"{path}: its safetensors header", CheckpointError)
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: its safetensors header is not a JSON object")
    return header


def _entry_problem(entry: object, data_bytes: int) -> str | None:
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
        return "has no dtype safetensors defines for plain tensors"
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        return "has no valid shape"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_bytes):
        return f"has a byte range outside the file's {data_bytes:,} bytes of data"
    if len(shape) > MAX_DIMENSIONS:
        return f"has {len(shape)} dimensions"
    # A zero-element shape such as [2**40, 2**40, 0] is as many bytes as its range says (none), but torch
    # cannot make a tensor whose other dimensions overflow its 64-bit sizes: the product in Python's integers.
    sized = 1
    for n in shape:
        sized *= max(n, 1)
    if sized >= 2**62:
        return f"claims shape {shape[:MAX_DIMENSIONS]}, which no tensor can have"
    numel = 1
    for n in shape:
        numel *= n
    if numel * DTYPES[entry["dtype"]].itemsize != offsets[1] - offsets[0]:
        return f"claims shape {shape} in {offsets[1] - offsets[0]:,} bytes"
    return None


def _layout_problem(ranges: list[tuple[int, int, str]], data_bytes: int) -> str | None:
    """The format's rule for the data: the tensors' byte ranges do not overlap and cover it, in order."""
    at = 0
    for begin, end, name in sorted(ranges):
        if begin < at:
            return f"tensor {name[:80]} shares bytes with another (its range starts at {begin:,}, inside one before)"
        if begin > at:
            return f"has {begin - at:,} bytes of data that no tensor claims (before tensor {name[:80]})"
        at = end
    if at != data_bytes:
        return f"has {data_bytes - at:,} bytes of data after its last tensor"
    return None


def _copied(data: mmap.mmap, offset: int, count: int) -> torch.Tensor:
    """The bytes as a tensor of their own; the view on the mapping ends here, so the mapping can close."""
    return torch.frombuffer(data, dtype=torch.uint8, count=count, offset=offset).clone()


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of the file, copied out of it (the file is closed on return), and its metadata."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise CheckpointError(f"{path}: empty file")
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        header = _header(path, data, size)
        start = 8 + struct.unpack("<Q", data[:8])[0]
        metadata = header.pop("__metadata__", None) or {}
        for name, entry in header.items():
            problem = _entry_problem(entry, size - start)
            if problem:
                raise CheckpointError(f"{path}: tensor {str(name)[:80]} {problem}")
        problem = _layout_problem([(*entry["data_offsets"], str(name)) for name, entry in header.items()
                                   if entry["data_offsets"][0] != entry["data_offsets"][1]], size - start)
        if problem:
            raise CheckpointError(f"{path}: {problem}; a corrupt or crafted file")
        tensors = {}
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            dtype = DTYPES[entry["dtype"]]
            if end == begin:
                tensors[name] = torch.empty(entry["shape"], dtype=dtype)
                continue
            tensors[name] = _copied(data, start + begin, end - begin).view(dtype).reshape(entry["shape"])
        return tensors, {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    finally:
        data.close()


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str] | None = None) -> None:
    """`tensors` (on the CPU, dtypes from `DTYPES`) in the file's order, with string metadata."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset, ordered = 0, []
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + nbytes]}
        ordered.append((tensor, nbytes))
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned, as the package writes it
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for tensor, nbytes in ordered:
            if nbytes:
                out.write((ctypes.c_char * nbytes).from_address(tensor.data_ptr()))
