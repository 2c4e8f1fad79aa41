"""tfchat's own safetensors reader and writer against the safetensors package, and against lying files."""
import json
import struct

import pytest
import torch

from tfchat.core.errors import CheckpointError
from tfchat.core.nn.safetensors_file import read_safetensors, write_safetensors

safetensors_torch = pytest.importorskip("safetensors.torch")


def sample_tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(7, 5, generator=g),
        "b.half": torch.randn(3, 9, generator=g).half(),
        "c.bf16": torch.randn(11, generator=g).bfloat16(),
        "d.ids": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "e.scalar": torch.tensor(2.5),
        "f.empty": torch.empty(0, 4),
    }


def test_what_tfchat_writes_the_package_reads(tmp_path):
    tensors = sample_tensors()
    write_safetensors(tmp_path / "ours.safetensors", tensors, {"format": "pt"})
    theirs = safetensors_torch.load_file(tmp_path / "ours.safetensors")
    assert theirs.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert theirs[name].dtype == tensor.dtype and torch.equal(theirs[name], tensor), name


def test_what_the_package_writes_tfchat_reads(tmp_path):
    tensors = sample_tensors()
    safetensors_torch.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"format": "pt"})
    ours, metadata = read_safetensors(tmp_path / "theirs.safetensors")
    assert metadata == {"format": "pt"}
    for name, tensor in tensors.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name


def _file(tmp_path, header: dict, data: bytes = b"", length: int | None = None):
    encoded = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded + data)
    return path


@pytest.mark.parametrize("header, data, length, message", [
    ({}, b"", 10**12, "header claims"),
    ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, None, "outside the file"),
    ({"x": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 16]}}, b"\0" * 16, None, "claims shape"),
    ({"x": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 16, None, "no dtype"),
    ({"x": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16, None, "no valid shape"),
    # The format's own rules for the data: ranges that do not overlap, that cover it, nothing after them.
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, None, "shares bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, None, "no tensor claims"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 16, None, "after its last tensor"),
    # A zero-element shape whose other dimensions overflow torch's sizes, and more dimensions than any tensor.
    ({"x": {"dtype": "F32", "shape": [2**40, 2**40, 0], "data_offsets": [0, 0]}}, b"", None, "no tensor can have"),
    ({"x": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}, b"\0" * 4, None, "dimensions"),
])
def test_a_lying_file_is_one_clear_error(tmp_path, header, data, length, message):
    with pytest.raises(CheckpointError, match=message):
        read_safetensors(_file(tmp_path, header, data, length))


@pytest.mark.parametrize("header_text, message", [
    ("[" * 200_000 + "]" * 200_000, "nested more than"),
    ('{"x": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 4]}}', "a number of 5,000"),
    ('{"__metadata__": {"a": NaN}}', "NaN"),
])
def test_a_header_outside_json_s_bounds_is_one_clear_error(tmp_path, header_text, message):
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header_text)) + header_text.encode())
    with pytest.raises(CheckpointError, match=message):
        read_safetensors(path)


def test_truncated_and_garbage_files_are_refused(tmp_path):
    good = tmp_path / "good.safetensors"
    write_safetensors(good, {"w": torch.ones(64)})
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        read_safetensors(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 5) + b"\xff\xfe{{{" + b"\0" * 10)
    with pytest.raises(CheckpointError, match="not readable JSON"):
        read_safetensors(garbage)
